// Command ocrbench measures, in one run on the same image mix:
//
//  1. limit:   gosseract with one reused client per core, no HTTP (the ceiling);
//  2. service: the readocr binary under concurrent HTTP load;
//  3. cli:     today's design, one `tesseract` process per image (the baseline);
//
// and, with -soak, the service's RSS over many requests. Each mode runs in its own process so
// CPU time and peak RSS are its own. The result is a Markdown table (stdout and -out).
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otiai10/gosseract/v2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/readocr/readocr/internal/testimages"
)

// mix is the 640x480 page mix: the same page in six formats plus the original scan.
var mix = []string{"phototest.tif", "pyt_test.jpg", "pyt_test.gif", "pyt_test.webp", "pyt_test.bmp", "pyt_test.tiff"}

type result struct {
	Name       string
	Images     int
	Wall       time.Duration
	Latencies  []time.Duration
	CPU        time.Duration
	PeakRSSKiB int64
	Errors     int
}

func (r result) perSecond() float64 { return float64(r.Images) / r.Wall.Seconds() }
func (r result) cpuMS() float64     { return float64(r.CPU.Milliseconds()) / float64(r.Images) }
func (r result) pct(p float64) time.Duration {
	l := slices.Clone(r.Latencies)
	slices.Sort(l)
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

func main() {
	child := flag.String("child", "", "internal: run one mode in this process (limit)")
	n := flag.Int("n", 240, "images per mode")
	server := flag.String("server", "bin/readocr", "readocr binary for the service mode")
	conc := flag.Int("c", 2*runtime.NumCPU(), "concurrent HTTP clients in the service mode")
	soak := flag.Int("soak", 0, "requests in the RSS soak (0: skip)")
	out := flag.String("out", "", "also write the Markdown report here")
	img := flag.String("image", "", "also measure this container image (docker)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	images, err := loadMix()
	if err != nil {
		log.Error("loading images", "err", err)
		os.Exit(1)
	}
	if *child == "limit" {
		json.NewEncoder(os.Stdout).Encode(runLimit(images, *n))
		return
	}

	workers := runtime.NumCPU()
	log.Info("benchmark", "images_per_mode", *n, "cores", workers, "http_clients", *conc)
	var results []result
	log.Info("mode 1/3: limit (gosseract, one reused client per core, no HTTP)")
	r, err := limitInChild(*n)
	if err != nil {
		log.Error("limit", "err", err)
		os.Exit(1)
	}
	results = append(results, r)
	log.Info("mode 2/3: service under HTTP load")
	native, err := startNative(log, *server)
	if err != nil {
		log.Error("service", "err", err)
		os.Exit(1)
	}
	defer native.stop()
	svc, _ := runService(log, native, images, *n, *conc, 0)
	results = append(results, svc)
	log.Info("mode 3/3: tesseract CLI process per image")
	cli, err := runCLI(images, *n, workers)
	if err != nil {
		log.Error("cli", "err", err)
		os.Exit(1)
	}
	results = append(results, cli)

	var ctr *containerRow
	if *img != "" {
		log.Info("container: the same load through the image", "image", *img)
		t, err := startContainer(*img, workers)
		if err != nil {
			log.Error("container", "err", err)
			os.Exit(1)
		}
		idle := procStatus(t.pid, "VmRSS")
		r, _ := runService(log, t, images, *n, *conc, 0)
		t.stop()
		size, _ := exec.Command("docker", "image", "inspect", "-f", "{{.Size}}", *img).Output()
		sizeBytes, _ := strconv.ParseInt(strings.TrimSpace(string(size)), 10, 64)
		ctr = &containerRow{image: *img, sizeBytes: sizeBytes, startup: t.startup, idleRSSKiB: idle, result: r}
	}

	// The soak comes last, so that the three throughput modes above ran back to back.
	var soakRows []soakRow
	if *soak > 0 {
		_, soakRows = runService(log, native, images, 0, *conc, *soak)
	}

	report := render(results, soakRows, ctr, *n, workers, *conc)
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			log.Error("writing report", "err", err)
			os.Exit(1)
		}
	}
}

type page struct {
	name, path string
	data       []byte
}

func loadMix() ([]page, error) {
	all, err := testimages.Load("images/")
	if err != nil {
		return nil, err
	}
	var out []page
	for _, name := range mix {
		for _, img := range all {
			if img.Name == name {
				out = append(out, page{img.Name, img.Path, img.Bytes})
			}
		}
	}
	if len(out) != len(mix) {
		return nil, fmt.Errorf("found %d of the %d mix images", len(out), len(mix))
	}
	return out, nil
}

// runLimit reads n pages with one reused gosseract client per core. It runs in a child
// process started with OMP_THREAD_LIMIT=1.
func runLimit(images []page, n int) result {
	workers := runtime.NumCPU()
	clients := make([]*gosseract.Client, workers)
	for i := range clients {
		c := gosseract.NewClient()
		c.Trim = false
		c.SetVariable("tessedit_pageseg_mode", "3")
		c.SetImageFromBytes(images[0].data)
		c.Text() // load the models
		clients[i] = c
	}
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	cpu0 := cpuSelf()
	start := time.Now()
	parallel(n, workers, func(w, i int) {
		c := clients[w]
		t := time.Now()
		img := images[i%len(images)]
		if err := c.SetImageFromBytes(img.data); err != nil {
			errs.Add(1)
		} else if txt, err := c.Text(); err != nil || !strings.Contains(txt, "quick brown") {
			errs.Add(1)
		}
		c.ClearImage()
		lat[i] = time.Since(t)
	})
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return result{Name: "limit: gosseract, reused client per core", Images: n, Wall: time.Since(start),
		Latencies: lat, CPU: cpuSelf() - cpu0, PeakRSSKiB: ru.Maxrss, Errors: int(errs.Load())}
}

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func limitInChild(n int) (result, error) {
	exe, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(exe, "-child", "limit", "-n", strconv.Itoa(n))
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	cmd.Stderr = io.Discard // Tesseract's "Estimating resolution" lines
	outb, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("limit child: %w", err)
	}
	var r result
	return r, json.Unmarshal(outb, &r)
}

// target is a running service under test.
type target struct {
	name    string
	base    string
	pid     int // on this host (a container's process is visible here too)
	startup time.Duration
	stop    func()
}

// startNative runs the readocr binary on a free port, its log in a temporary file.
func startNative(log *slog.Logger, bin string) (target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return target{}, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "--port", port, "--queue", "64")
	cmd.Env = os.Environ() // the service sets OMP_THREAD_LIMIT=1 itself
	logFile, err := os.CreateTemp("", "ocrbench-service-*.log")
	if err != nil {
		return target{}, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	log.Info("service log", "path", logFile.Name())
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return target{}, err
	}
	t := target{name: "native", base: "http://127.0.0.1:" + port, pid: cmd.Process.Pid, stop: func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logFile.Close()
	}}
	if t.startup, err = waitReady(t.base); err != nil {
		t.stop()
		return t, err
	}
	t.startup = time.Since(began)
	return t, nil
}

// startContainer runs the image with the restrictions of a cluster and the same CPUs.
func startContainer(image string, cpus int) (target, error) {
	began := time.Now()
	out, err := exec.Command("docker", "run", "-d", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
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

// runService loads t with conc clients, then optionally soaks it, sampling RSS.
func runService(log *slog.Logger, t target, images []page, n, conc, soak int) (result, []soakRow) {
	bodies := make([][]byte, len(images))
	for i, img := range images {
		bodies[i] = []byte(`{"image":"` + base64.StdEncoding.EncodeToString(img.data) + `","lang":"eng","config":""}`)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	load := func(count int, lat []time.Duration, progress func(done int)) int {
		var errs, done atomic.Int64
		parallel(count, conc, func(_, i int) {
			began := time.Now()
			resp, err := client.Post(t.base+"/read_ocr", "application/json", bytes.NewReader(bodies[i%len(bodies)]))
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
	load(2*conc, nil, nil) // warm connections and clients
	cpu0 := procCPU(t.pid)
	lat := make([]time.Duration, n)
	began := time.Now()
	errs := load(n, lat, nil)
	res := result{Name: "service: readocr over HTTP (" + t.name + ")", Images: n, Wall: time.Since(began), Latencies: lat,
		CPU: procCPU(t.pid) - cpu0, PeakRSSKiB: procStatus(t.pid, "VmHWM"), Errors: errs}

	var rows []soakRow
	if soak > 0 {
		step := max(soak/10, 1)
		rows = append(rows, soakRow{0, procStatus(t.pid, "VmRSS"), cHeap(t.base)})
		var mu sync.Mutex
		log.Info("soak", "requests", soak)
		res.Errors += load(soak, nil, func(d int) {
			if d%step == 0 {
				row := soakRow{d, procStatus(t.pid, "VmRSS"), cHeap(t.base)}
				mu.Lock()
				rows = append(rows, row)
				mu.Unlock()
				log.Info("soak progress", "done", d, "of", soak, "rss_kib", row.rssKiB, "c_heap_bytes", row.cHeap)
			}
		})
		slices.SortFunc(rows, func(a, b soakRow) int { return a.done - b.done })
	}
	return res, rows
}

// parallel calls f(worker, i) for every i in [0, n) from `workers` goroutines, each taking the
// next index as it finishes one.
func parallel(n, workers int, f func(worker, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(w, i)
			}
		})
	}
	wg.Wait()
}

type soakRow struct {
	done   int
	rssKiB int64
	cHeap  float64 // bytes malloc'ed and not freed (the service's readocr_c_heap_bytes)
}

// cHeap reads the service's C heap gauge from /metrics (0 if it cannot).
func cHeap(base string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if f := families["readocr_c_heap_bytes"]; err == nil && f != nil && len(f.GetMetric()) == 1 {
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	return 0
}

// procCPU is utime+stime of pid from /proc/pid/stat, in clock ticks of 10 ms.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procStatus reads a kB field (VmRSS, VmHWM) of /proc/pid/status.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// runCLI runs one `tesseract <file> stdout` per image, `workers` at a time, as the Flask
// service did through pytesseract.
func runCLI(images []page, n, workers int) (result, error) {
	if _, err := exec.LookPath("tesseract"); err != nil {
		return result{}, fmt.Errorf("the baseline needs the tesseract CLI: %w", err)
	}
	var errs atomic.Int64
	var mu sync.Mutex
	var cpu time.Duration
	var peak int64
	lat := make([]time.Duration, n)
	start := time.Now()
	parallel(n, workers, func(_, i int) {
		t := time.Now()
		cmd := exec.Command("tesseract", images[i%len(images)].path, "stdout")
		cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
		outb, err := cmd.Output()
		lat[i] = time.Since(t)
		if err != nil || !bytes.Contains(outb, []byte("quick brown")) {
			errs.Add(1)
		}
		if ps := cmd.ProcessState; ps != nil {
			ru := ps.SysUsage().(*syscall.Rusage)
			mu.Lock()
			cpu += ps.UserTime() + ps.SystemTime()
			peak = max(peak, ru.Maxrss)
			mu.Unlock()
		}
	})
	return result{Name: "baseline: tesseract CLI per image", Images: n, Wall: time.Since(start), Latencies: lat,
		CPU: cpu, PeakRSSKiB: peak, Errors: int(errs.Load())}, nil
}

type containerRow struct {
	image      string
	sizeBytes  int64
	startup    time.Duration
	idleRSSKiB int64
	result     result
}

func render(rs []result, soak []soakRow, ctr *containerRow, n, cores, conc int) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "## OCR throughput, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "%d images per mode, the 640x480 mix (%s), %d cores (%s), %s, tesseract %s.\n",
		n, strings.Join(mix, ", "), cores, host, runtime.Version(), gosseract.Version())
	fmt.Fprintf(&b, "Service: %d concurrent HTTP clients, base64 JSON bodies. CLI: %d processes at a time. OMP_THREAD_LIMIT=1 everywhere.\n\n", conc, cores)
	b.WriteString("| mode | images/s | p50 ms | p95 ms | p99 ms | CPU ms/image | peak RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %.1f | %d | %d | %d | %.0f | %.0f | %d |\n", r.Name, r.perSecond(),
			r.pct(.50).Milliseconds(), r.pct(.95).Milliseconds(), r.pct(.99).Milliseconds(), r.cpuMS(), float64(r.PeakRSSKiB)/1024, r.Errors)
	}
	limit, svc, cli := rs[0], rs[1], rs[2]
	fmt.Fprintf(&b, "\nRatios (same run): service/limit throughput **%.2f**, service/CLI throughput **%.2f**, "+
		"CLI/service CPU per image **%.2f**.\n", svc.perSecond()/limit.perSecond(), svc.perSecond()/cli.perSecond(), cli.cpuMS()/svc.cpuMS())
	b.WriteString("Peak RSS of the CLI row is the largest single tesseract process; the service's is the whole server.\n")
	if ctr != nil {
		r := ctr.result
		fmt.Fprintf(&b, "\n### Container image\n\n| image | size MB | docker run to /readyz 200 | idle RSS MiB | images/s | p50 ms | p95 ms | CPU ms/image | peak RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| %s | %.1f | %d ms | %.0f | %.1f | %d | %d | %.0f | %.0f | %d |\n", ctr.image, float64(ctr.sizeBytes)/1e6,
			ctr.startup.Milliseconds(), float64(ctr.idleRSSKiB)/1024, r.perSecond(), r.pct(.5).Milliseconds(), r.pct(.95).Milliseconds(),
			r.cpuMS(), float64(r.PeakRSSKiB)/1024, r.Errors)
		fmt.Fprintf(&b, "\nContainer/native throughput (same run, same load, --cpus %d, read-only, no capabilities): **%.2f**.\n", cores, r.perSecond()/svc.perSecond())
	}
	if len(soak) > 0 {
		b.WriteString("\n### Service memory under sustained load\n\n| requests served | RSS MiB | C heap in use MiB |\n|---:|---:|---:|\n")
		for _, s := range soak {
			fmt.Fprintf(&b, "| %d | %.1f | %.2f |\n", s.done, float64(s.rssKiB)/1024, s.cHeap/(1<<20))
		}
		// After the first step (warm-up): the range, and the trend of a least-squares line.
		warm := soak[min(1, len(soak)-1):]
		lo, hi := warm[0].rssKiB, warm[0].rssKiB
		var xs, ys []float64
		for _, s := range warm {
			lo, hi = min(lo, s.rssKiB), max(hi, s.rssKiB)
			xs, ys = append(xs, float64(s.done)), append(ys, float64(s.rssKiB)/1024)
		}
		first, last := warm[0], warm[len(warm)-1]
		fmt.Fprintf(&b, "\nFrom %d to %d requests: RSS between %.1f and %.1f MiB, trend %+.2f MiB per 1,000 requests "+
			"(least squares); C heap in use %.2f -> %.2f MiB.\n", first.done, last.done, float64(lo)/1024, float64(hi)/1024,
			1000*slope(xs, ys), first.cHeap/(1<<20), last.cHeap/(1<<20))
	}
	return b.String()
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	if d := n*sxx - sx*sx; d != 0 {
		return (n*sxy - sx*sy) / d
	}
	return 0
}
