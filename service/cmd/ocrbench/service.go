package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/readocr/readocr/internal/testsupport/proctree"
)

// target is a running service under test.
type target struct {
	name    string
	base    string // the API
	key     string // an API key to send (Authorization: Bearer), if the target requires one
	admin   string // its admin port ("" when it has none)
	pid     int    // on this host (a container's process is visible here too)
	startup time.Duration
	stop    func()
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// startNative runs a readocr binary on a free port, its log in a temporary file.
func startNative(log *slog.Logger, bin string, args ...string) (target, error) {
	return startNativeEnv(log, bin, nil, args...)
}

// startNativeEnv is startNative with env added to the binary's environment.
func startNativeEnv(log *slog.Logger, bin string, env []string, args ...string) (target, error) {
	port, err := freePort()
	if err != nil {
		return target{}, err
	}
	args = append([]string{"--port", port, "--queue", "64"}, args...)
	t := target{name: "native", base: "http://127.0.0.1:" + port}
	// Builds before the admin port served /metrics on the API port.
	if help, _ := exec.Command(bin, "--help").CombinedOutput(); bytes.Contains(help, []byte("-admin-port")) {
		admin, err := freePort()
		if err != nil {
			return target{}, err
		}
		args = append(args, "--admin-port", admin)
		t.admin = "http://127.0.0.1:" + admin
	}
	cmd := exec.Command(bin, args...)
	// Its own jobs directory: the embedded broker's is locked by the process using it (builds
	// before jobs ignore the variable).
	dataDir, err := os.MkdirTemp("", "ocrbench-jobs-*")
	if err != nil {
		return target{}, err
	}
	cmd.Env = append(append(os.Environ(), "OCR_DATA_DIR="+dataDir), env...)
	logFile, err := os.CreateTemp("", "ocrbench-service-*.log")
	if err != nil {
		return target{}, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	log.Info("service log", "binary", bin, "path", logFile.Name())
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return target{}, err
	}
	var once sync.Once
	t.pid = cmd.Process.Pid
	t.stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			logFile.Close()
			os.RemoveAll(dataDir)
		})
	}
	if _, err = waitReady(t.base); err != nil {
		t.stop()
		return t, err
	}
	t.startup = time.Since(began)
	return t, nil
}

// startContainer runs the image with the restrictions of a cluster and the same CPUs.
func startContainer(image string, cpus int) (target, error) {
	began := time.Now()
	out, err := exec.Command("docker", "run", "-d", "--read-only", "--tmpfs", "/tmp:mode=1777", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--cpus", strconv.Itoa(cpus), "-e", "OCR_QUEUE=64", "-p", "127.0.0.1::4000", image).Output()
	if err != nil {
		return target{}, fmt.Errorf("docker run: %w", err)
	}
	id := strings.TrimSpace(string(out))
	stop := func() { exec.Command("docker", "rm", "-f", id).Run() }
	port, err := exec.Command("docker", "port", id, "4000/tcp").Output()
	if err != nil {
		stop()
		return target{}, err
	}
	t := target{name: "container", base: "http://" + strings.Split(strings.TrimSpace(string(port)), "\n")[0], stop: stop}
	if _, err := waitReady(t.base); err != nil {
		stop()
		return t, err
	}
	t.startup = time.Since(began)
	pid, _ := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", id).Output()
	t.pid, _ = strconv.Atoi(strings.TrimSpace(string(pid)))
	return t, nil
}

func waitReady(base string) (time.Duration, error) {
	began := time.Now()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(began), nil
			}
		}
	}
	return 0, fmt.Errorf("%s not ready after 60s", base)
}

// loader sends the mix as base64 JSON bodies, conc requests at a time.
type loader struct {
	t      target
	bodies [][]byte
	conc   int
	client *http.Client
}

func newLoader(t target, images []page, conc int) *loader {
	l := &loader{t: t, conc: conc, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}}
	for _, img := range images {
		l.bodies = append(l.bodies, []byte(`{"image":"`+base64.StdEncoding.EncodeToString(img.data)+`","lang":"eng","config":""}`))
	}
	return l
}

// run sends count requests and returns how many failed; lat, when not nil, gets each latency.
func (l *loader) run(count int, lat []time.Duration, progress func(done int)) int {
	var errs, done atomic.Int64
	parallel(count, l.conc, func(_, i int) {
		began := time.Now()
		req, _ := http.NewRequest(http.MethodPost, l.t.base+"/read_ocr", bytes.NewReader(l.bodies[i%len(l.bodies)]))
		req.Header.Set("Content-Type", "application/json")
		if l.t.key != "" {
			req.Header.Set("Authorization", "Bearer "+l.t.key)
		}
		resp, err := l.client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte("quick brown")) {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			errs.Add(1)
		}
		if lat != nil {
			lat[i] = time.Since(began)
		}
		if d := int(done.Add(1)); progress != nil {
			progress(d)
		}
	})
	return int(errs.Load())
}

// runLoad measures throughput, latency, CPU (the whole process tree) and peak memory.
func runLoad(t target, images []page, n, conc int) result {
	l := newLoader(t, images, conc)
	l.run(2*conc, nil, nil) // warm connections and workers
	cpu0 := proctree.CPU(t.pid)
	lat := make([]time.Duration, n)
	began := time.Now()
	errs := l.run(n, lat, nil)
	name := "service: readocr over HTTP (" + t.name + ")"
	return result{Name: name, Images: n, Wall: time.Since(began), Latencies: lat,
		CPU: proctree.CPU(t.pid) - cpu0, PeakRSSKiB: proctree.KiB(t.pid, "VmHWM"), Errors: errs}
}

type containerRow struct {
	image      string
	sizeBytes  int64
	startup    time.Duration
	idleRSSKiB int64
	result     result
}

func runContainer(image string, images []page, n, conc, cpus int) (*containerRow, error) {
	t, err := startContainer(image, cpus)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	idle := proctree.KiB(t.pid, "VmRSS")
	r := runLoad(t, images, n, conc)
	size, _ := exec.Command("docker", "image", "inspect", "-f", "{{.Size}}", image).Output()
	sizeBytes, _ := strconv.ParseInt(strings.TrimSpace(string(size)), 10, 64)
	return &containerRow{image: image, sizeBytes: sizeBytes, startup: t.startup, idleRSSKiB: idle, result: r}, nil
}

type soakRow struct {
	done   int
	rssKiB int64   // the process tree
	cHeap  float64 // bytes malloc'ed and not freed by the workers (readocr_c_heap_bytes)
}

// runSoak sends soak requests, sampling the tree's RSS and the workers' C heap ten times.
func runSoak(log *slog.Logger, t target, images []page, soak, conc int) []soakRow {
	l := newLoader(t, images, conc)
	step := max(soak/10, 1)
	rows := []soakRow{{0, proctree.KiB(t.pid, "VmRSS"), gauge(t.admin, "readocr_c_heap_bytes")}}
	var mu sync.Mutex
	log.Info("soak", "requests", soak)
	l.run(soak, nil, func(d int) {
		if d%step == 0 {
			row := soakRow{d, proctree.KiB(t.pid, "VmRSS"), gauge(t.admin, "readocr_c_heap_bytes")}
			mu.Lock()
			rows = append(rows, row)
			mu.Unlock()
			log.Info("soak progress", "done", d, "of", soak, "rss_kib", row.rssKiB, "c_heap_bytes", row.cHeap)
		}
	})
	slices.SortFunc(rows, func(a, b soakRow) int { return a.done - b.done })
	return rows
}
