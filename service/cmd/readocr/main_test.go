package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/syncbuffer"
	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/ocr"
)

// The engine's workers are this test binary started again: ServeIfWorker serves then.
func TestMain(m *testing.M) {
	ocr.ServeIfWorker()
	os.Exit(m.Run())
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func postImage(t *testing.T, base string, img []byte) (int, string) {
	t.Helper()
	body := `{"image":"` + base64.StdEncoding.EncodeToString(img) + `"}`
	resp, err := http.Post(base+"/read_ocr", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("not ready after 30s")
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, nil)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-workers") {
		t.Fatalf("err %v, output %q", err, out.String())
	}
}

func TestBadConfigFails(t *testing.T) {
	err := run(context.Background(), nil, func(k string) string { return map[string]string{"PORT": "x"}[k] }, io.Discard, nil)
	if err == nil {
		t.Fatal("PORT=x accepted")
	}
}

// service is run() in the background, one worker, with a page in flight.
type service struct {
	base     string
	admin    string
	out      *syncbuffer.Buffer
	stop     context.CancelFunc // SIGTERM
	done     chan error         // run's result
	inflight chan result
}

type result struct {
	status int
	body   string
}

// startWithPageInFlight starts run with args (PDF input off: compiling PDFium under the race
// detector takes a minute, and TestBinary starts the real thing), posts img and returns once the page is being
// recognised (the running gauge says so).
func startWithPageInFlight(t *testing.T, env map[string]string, args []string, img []byte) *service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	env["OCR_WORKERS"] = "1"
	s := &service{out: &syncbuffer.Buffer{}, stop: cancel, done: make(chan error, 1), inflight: make(chan result, 1)}
	ready := make(chan string, 1)
	adminPort := freePort(t)
	s.admin = "http://127.0.0.1:" + adminPort
	go func() {
		s.done <- run(ctx, append([]string{"--port", "0", "--admin-port", adminPort, "--capture-stderr=false", "--pdf=false",
			"--data-dir", t.TempDir()}, args...), func(k string) string { return env[k] }, s.out, ready)
	}()
	addr := <-ready
	s.base = "http://127.0.0.1" + addr[strings.LastIndex(addr, ":"):]
	waitReady(t, s.base)
	go func() {
		status, body := postImage(t, s.base, img)
		s.inflight <- result{status, body}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := http.Get(s.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(m), "\nreadocr_running 1\n") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("the request never started")
		}
	}
}

// waitStopped checks that run returned nil and logged its last line.
func (s *service) waitStopped(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
	if !strings.Contains(s.out.String(), `"msg":"stopped"`) {
		t.Errorf("no stop log in %s", s.out.String())
	}
}

// SIGTERM (here: ctx cancelled) while a page is being read: /readyz turns 503 and answers close
// their connections, the request completes with its text, and run returns nil.
func TestRunDrainsInFlightRequests(t *testing.T) {
	s := startWithPageInFlight(t, map[string]string{}, []string{"--drain-delay", "300ms"}, testimages.Get(t, "eurotext.tif").Bytes)
	s.stop()
	time.Sleep(100 * time.Millisecond) // within the drain delay
	if resp, err := http.Get(s.base + "/readyz"); err != nil || resp.StatusCode != 503 || !resp.Close {
		t.Errorf("readyz during drain: %v %v (want 503 and Connection: close, so that clients reconnect elsewhere)", resp, err)
	}
	if r := <-s.inflight; r.status != 200 || !strings.Contains(r.body, "quick") {
		t.Fatalf("in-flight request during shutdown: %d %s", r.status, r.body)
	}
	s.waitStopped(t)
}

// SIGTERM while a page is being read that will not finish within --shutdown-timeout: when the
// time is up the page is stopped between words, its client gets 503 not_ready (to retry on
// another replica) instead of a cut connection, the engine closes cleanly and run returns nil.
func TestRunStopsPagesPastShutdownTimeout(t *testing.T) {
	slow := testimages.Tiled(t, testimages.Get(t, "eurotext.tif"), 3) // ~2.3 s of OCR here
	s := startWithPageInFlight(t, map[string]string{"OCR_MAX_IMAGE_BYTES": "33554432"}, []string{"--shutdown-timeout", "200ms"}, slow)
	s.stop()
	if r := <-s.inflight; r.status != 503 || !strings.Contains(r.body, `"not_ready"`) {
		t.Errorf("page cut off by the shutdown: %d %s, want 503 not_ready", r.status, r.body)
	}
	s.waitStopped(t)
	if logs := s.out.String(); !strings.Contains(logs, "shutdown time is up") || strings.Contains(logs, "did not stop in time") {
		t.Errorf("want the page stopped and the engine closed cleanly; logs:\n%s", logs)
	}
}

// SIGTERM while a page is in layout analysis, which never checks for cancellation (a page of
// specks: tens of seconds of it): when the shutdown time is up its client still gets 503
// not_ready at once, the worker is killed, and run returns nil promptly.
func TestRunAnswersUnstoppablePagesAtShutdown(t *testing.T) {
	specks := testimages.Specks(t, 2600, 2600, 20)
	s := startWithPageInFlight(t, map[string]string{}, []string{"--shutdown-timeout", "300ms"}, specks)
	stopped := time.Now()
	s.stop()
	select {
	case r := <-s.inflight:
		if r.status != 503 || !strings.Contains(r.body, `"not_ready"`) {
			t.Errorf("unstoppable page at shutdown: %d %s, want 503 not_ready", r.status, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client of an unstoppable page got no answer")
	}
	if d := time.Since(stopped); d > 3*time.Second {
		t.Errorf("answered %v after SIGTERM with a shutdown timeout of 300ms", d)
	}
	s.waitStopped(t)
}

// The real binary, started the way a user would without OMP_THREAD_LIMIT: its OCR workers run
// with the variable, it logs only JSON on stdout (the workers' Tesseract messages included),
// and it exits 0 promptly on SIGTERM, leaving no worker behind.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "readocr")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--port", "0", "--admin-port", freePort(t), "--log-level", "debug", "--workers", "2", "--data-dir", t.TempDir())
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OMP_THREAD_LIMIT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var port string
	var all []string
	for port == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("exited early: %s %s", strings.Join(all, "\n"), stderr.String())
			}
			all = append(all, l)
			var rec struct{ Msg, Addr string }
			json.Unmarshal([]byte(l), &rec)
			if rec.Msg == "listening" {
				port = rec.Addr[strings.LastIndex(rec.Addr, ":")+1:]
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no listening line")
		}
	}
	base := "http://127.0.0.1:" + port
	waitReady(t, base)
	workers := childrenOf(cmd.Process.Pid)
	if len(workers) != 2 {
		t.Fatalf("%d worker processes, want 2", len(workers))
	}
	for _, pid := range workers {
		environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(environ, []byte("OMP_THREAD_LIMIT=1\x00")) {
			t.Errorf("worker %d runs without OMP_THREAD_LIMIT=1", pid)
		}
	}
	// A truncated PNG makes Leptonica print to stderr.
	if s, _ := postImage(t, base, testimages.Get(t, "truncated.png").Bytes); s != 422 {
		t.Errorf("truncated png: %d", s)
	}
	if s, body := postImage(t, base, testimages.Get(t, "gos_001-helloworld.png").Bytes); s != 200 || !strings.Contains(body, "Hello, World!") {
		t.Errorf("helloworld: %d %s", s, body)
	}

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	for l := range lines {
		all = append(all, l)
	}
	err := cmd.Wait()
	if err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}
	for _, pid := range workers {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("worker %d outlived the service", pid)
		}
	}
	var tesseractLines int
	for _, l := range all {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("stdout line is not JSON: %q", l)
		}
		if rec["component"] == "tesseract" {
			tesseractLines++
		}
	}
	if tesseractLines == 0 {
		t.Errorf("Leptonica's error did not reach the log as a record:\n%s", strings.Join(all, "\n"))
	}
	if strings.TrimSpace(stderr.String()) != "" {
		t.Errorf("stderr is not empty: %q", stderr.String())
	}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}
