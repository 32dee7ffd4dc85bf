// Package terminal_test runs `readocr ocr` as a person does: in a real terminal (tmux, whose
// screen is read back as they would see it) against the real service, and checks what it
// shows, what it writes and its exit status; and against small fake servers for the answers
// the real one cannot be made to give (500, 429 with Retry-After).
package terminal_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/servicebin"
	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

var (
	bin string
	svc *servicebin.Service
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, _ := os.MkdirTemp("", "readocr-terminal-")
	defer os.RemoveAll(dir)
	var err error
	if bin, err = servicebin.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		return 1
	}
	if svc, err = servicebin.Start(bin, filepath.Join(dir, "data"), "--workers", "2"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer svc.Stop()
	return m.Run()
}

// tmux is one terminal: a tmux session on its own server, 120 x 60.
type tmux struct {
	t    *testing.T
	sock string
}

func needTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("READOCR_REQUIRE_TERMINAL") != "" {
			t.Fatal("tmux is not installed (hack/install-deps.sh --test installs it)")
		}
		t.Skip("tmux is not installed (hack/install-deps.sh --test installs it)")
	}
}

// terminal runs the shell command line in a new terminal in dir; the line's exit status is
// printed after it as EXIT=<n>.
func terminal(t *testing.T, dir, line string) *tmux {
	needTmux(t)
	tm := &tmux{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	tm.run("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "120", "-y", "60", "-c", dir,
		line+"; echo EXIT=$?; sleep 3600")
	t.Cleanup(func() { exec.Command("tmux", "-S", tm.sock, "kill-server").Run() })
	return tm
}

func (tm *tmux) run(args ...string) string {
	out, err := exec.Command("tmux", append([]string{"-S", tm.sock}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

// screen is what the terminal shows now.
func (tm *tmux) screen() string {
	return strings.TrimRight(tm.run("capture-pane", "-p", "-t", "t"), "\n")
}

// waitFor returns the screen once it matches re.
func (tm *tmux) waitFor(re string, timeout time.Duration, during func(string)) string {
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		s := tm.screen()
		if rx.MatchString(s) {
			return s
		}
		if during != nil {
			during(s)
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the screen never showed %q:\n%s", re, s)
		}
	}
}

func exitStatus(screen string) string {
	m := regexp.MustCompile(`EXIT=(\d+)`).FindStringSubmatch(screen)
	if m == nil {
		return ""
	}
	return m[1]
}

func saveArtifact(t *testing.T, name, body string) {
	dir, err := servicebin.Artifacts("terminal")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	os.WriteFile(p, []byte(body+"\n"), 0o644)
	t.Logf("screen saved: %s", p)
}

func decoded(t *testing.T, name string) image.Image {
	img, err := testdocs.Decode(testimages.Get(t, name).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// mixedFolder writes 20 files: the 11 test images (PNG, JPEG, TIFF, GIF, WebP, BMP, PBM), 5
// documents (scanned PDFs of 1, 2 and 3 pages, a text PDF, a 3-page TIFF), 2 more pages in a
// subfolder, a text file named .png and a JPEG cut in half. 18 read, 2 fail.
func mixedFolder(t *testing.T) string {
	d := filepath.Join(t.TempDir(), "scans")
	os.MkdirAll(filepath.Join(d, "more"), 0o755)
	for _, img := range testimages.All(t, "images/") {
		os.WriteFile(filepath.Join(d, img.Name), img.Bytes, 0o644)
	}
	photo, euro := decoded(t, "phototest.tif"), decoded(t, "eurotext.tif")
	files := map[string][]byte{
		"invoice-1p.pdf":     testdocs.ScannedPDF([]image.Image{photo}, 100),
		"letter-2p.pdf":      testdocs.ScannedPDF([]image.Image{photo, euro}, 100),
		"report-3p.pdf":      testdocs.ScannedPDF([]image.Image{euro, photo, euro}, 100),
		"born-digital.pdf":   testdocs.TextPDF([]string{"A page of real text", "in a PDF"}, []string{"and a second page"}),
		"fax-3p.tiff":        testdocs.TIFF([]image.Image{photo, photo, euro}, 100),
		"more/scan-0001.png": testimages.Get(t, "gos_001-helloworld.png").Bytes,
		"more/scan-0002.jpg": testimages.Get(t, "pyt_test.jpg").Bytes,
		"not-an-image.png":   []byte("these are notes, not pixels\n"),
		"cut-in-half.jpg":    testimages.Get(t, "pyt_test.jpg").Bytes[:len(testimages.Get(t, "pyt_test.jpg").Bytes)/2],
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	entries := 0
	filepath.WalkDir(d, func(_ string, e os.DirEntry, _ error) error {
		if !e.IsDir() {
			entries++
		}
		return nil
	})
	if entries != 20 {
		t.Fatalf("%d files, want 20", entries)
	}
	return d
}

// A folder of 20 mixed files read in a real terminal: progress bars drawn and redrawn, the
// outputs written, the summary naming the two bad files, exit status 1. Run again: the 18
// are skipped, the 2 fail again.
func TestFolderOf20InATerminal(t *testing.T) {
	dir := mixedFolder(t)
	tm := terminal(t, filepath.Dir(dir), bin+" ocr --url "+svc.URL+" -n 4 --format txt,json scans")
	var during string
	end := tm.waitFor(`EXIT=\d+`, 3*time.Minute, func(s string) {
		if during == "" && regexp.MustCompile(`%.*║`).MatchString(s) && strings.Contains(s, "read [") {
			during = s // bars moving, some files read already
		}
	})
	saveArtifact(t, "folder-of-20-during.txt", during)
	saveArtifact(t, "folder-of-20-end.txt", end)
	t.Logf("the terminal at the end:\n%s", end)
	if during == "" {
		t.Error("no screen with progress bars and files read was seen during the run")
	}
	if exitStatus(end) != "1" || !strings.Contains(end, "20 files: 18 read, 0 skipped (done before), 2 failed") {
		t.Fatalf("exit %q, summary:\n%s", exitStatus(end), end)
	}
	for _, want := range []string{"failed: scans/cut-in-half.jpg: ", "failed: scans/not-an-image.png: 415 unsupported_media_type",
		"20 files", "scans/report-3p.pdf", "read ["} {
		if !strings.Contains(end, want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	txt, err := os.ReadFile(filepath.Join(dir, "phototest.txt"))
	if err != nil || !strings.Contains(string(txt), "This is a lot of 12 point text") {
		t.Errorf("phototest.txt: %v %q", err, txt)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "report-3p.txt")); strings.Count(string(b), "\f") != 2 {
		t.Errorf("report-3p.txt has not 3 pages: %q", b)
	}
	outputs, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	more, _ := filepath.Glob(filepath.Join(dir, "more", "*.txt"))
	jsons, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(outputs)+len(more) != 18 || len(jsons) != len(outputs) {
		t.Errorf("%d + %d .txt and %d .json files, want 18 .txt and as many .json", len(outputs), len(more), len(jsons))
	}
	if journals, _ := filepath.Glob(filepath.Join(dir, ".*.readocr-jobs.json")); len(journals) != 0 {
		t.Errorf("journals left after a finished run: %v", journals)
	}

	again := terminal(t, filepath.Dir(dir), bin+" ocr --url "+svc.URL+" scans")
	end = again.waitFor(`EXIT=\d+`, time.Minute, nil)
	if exitStatus(end) != "1" || !strings.Contains(end, "20 files: 0 read, 18 skipped (done before), 2 failed") {
		t.Errorf("second run:\n%s", end)
	}
}

// Ctrl-C in the middle of a run: exit 130 with the jobs left running and their IDs in the
// journals; the same command again takes those jobs up (the same IDs, nothing sent again) and
// finishes.
func TestInterruptedRunResumes(t *testing.T) {
	d := filepath.Join(t.TempDir(), "docs")
	os.MkdirAll(d, 0o755)
	photo := decoded(t, "phototest.tif")
	pages := []image.Image{photo, photo, photo, photo, photo, photo}
	for i := range 3 {
		os.WriteFile(filepath.Join(d, fmt.Sprintf("book-%d.pdf", i)), testdocs.ScannedPDF(pages, 100), 0o644)
	}
	// Pages rendered at 150 DPI: a quick run, still long enough to be stopped in the middle.
	tm := terminal(t, filepath.Dir(d), bin+" ocr --url "+svc.URL+" -n 2 --config '--dpi 150' docs")
	tm.waitFor(`[1-9]\d\.\d\d% ║.*docs/book`, 2*time.Minute, nil) // a file part read
	tm.run("send-keys", "-t", "t", "C-c")
	end := tm.waitFor(`EXIT=\d+`, time.Minute, nil)
	saveArtifact(t, "interrupted.txt", end)
	if exitStatus(end) != "130" || !strings.Contains(end, "interrupted: run the same command again") {
		t.Fatalf("after Ctrl-C:\n%s", end)
	}
	journals, _ := filepath.Glob(filepath.Join(d, ".*.readocr-jobs.json"))
	ids := map[string]bool{}
	for _, j := range journals {
		b, _ := os.ReadFile(j)
		for _, m := range regexp.MustCompile(`"id": "([A-Z2-7]+)"`).FindAllStringSubmatch(string(b), -1) {
			ids[m[1]] = true
		}
	}
	if len(ids) == 0 {
		t.Fatalf("no job IDs kept in %v", journals)
	}

	out, code := runCLI(t, filepath.Dir(d), "ocr", "--url", svc.URL, "--json", "--config", "--dpi 150", "docs")
	if code != 0 {
		t.Fatalf("resumed run: exit %d\n%s", code, out)
	}
	resumed := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(line, `"resumed":true`) {
			continue
		}
		resumed++
		for _, m := range regexp.MustCompile(`"jobs":\["([A-Z2-7]+)"`).FindAllStringSubmatch(line, -1) {
			if !ids[m[1]] {
				t.Errorf("resumed with job %s, not one of the journal's %v", m[1], ids)
			}
		}
	}
	if resumed == 0 || !strings.Contains(out, `"read":3`) {
		t.Errorf("%d files resumed:\n%s", resumed, out)
	}
	if left, _ := filepath.Glob(filepath.Join(d, ".*.readocr-jobs.json")); len(left) != 0 {
		t.Errorf("journals left: %v", left)
	}
}

// runCLI runs the binary with args (not in a terminal: no bars) and returns stdout and
// stderr and the exit status.
func runCLI(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// Each bad input, with its exit status and what it says.
func TestExitStatuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.png")
	os.WriteFile(good, testimages.Get(t, "gos_001-helloworld.png").Bytes, 0o644)

	unreachable := httptest.NewServer(http.NotFoundHandler())
	unreachable.Close() // nothing listens there now

	fail500 := fake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(500)
		io.WriteString(w, `{"error":{"code":"internal","message":"internal error"},"request_id":"x"}`)
	})
	// The real limiter is another change: this fake answers as the contract says it will.
	busyOnce := fake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
			return
		}
		io.WriteString(w, `{"text":"Hello, World!\n","confidence":95,"lines":[],"words":[],"pages":[{"page":1,"width":10,"height":10,"source":"ocr","text":"Hello, World!\n","lines":[],"words":[]}]}`)
	})
	keyRefused := fake(t, nil) // every request 401

	for _, c := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no arguments", []string{"ocr"}, 2, "no FILE, DIR or GLOB given"},
		{"unknown flag", []string{"ocr", "--nope", good}, 2, "flag provided but not defined"},
		{"unknown format", []string{"ocr", "--format", "docx", good}, 2, `format "docx"`},
		{"pattern matching nothing", []string{"ocr", "--url", svc.URL, dir + "/*.tif"}, 2, "no file matches"},
		{"missing file", []string{"ocr", "--url", svc.URL, dir + "/missing.png", good}, 1, "failed: " + dir + "/missing.png: no such file"},
		{"unreachable service", []string{"ocr", "--url", unreachable.URL, good}, 3, "connection refused"},
		{"key refused", []string{"ocr", "--url", keyRefused.URL, "--key", "wrong", good}, 3, "401 unauthorized"},
		{"server error", []string{"ocr", "--url", fail500.URL, "--force", good}, 1, "failed: " + good + ": 500 internal: internal error"},
		{"429 then 200", []string{"ocr", "--url", busyOnce.URL, "--force", good}, 0, "429 rate_limited: waiting 1s as it asks"},
		{"all read", []string{"ocr", "--url", svc.URL, "--force", good}, 0, "1 file: 1 read, 0 skipped (done before), 0 failed"},
		{"done before", []string{"ocr", "--url", svc.URL, good}, 0, "1 file: 0 read, 1 skipped (done before), 0 failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, code := runCLI(t, dir, c.args...)
			if code != c.code || !strings.Contains(out, c.says) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, c.code, c.says, out)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "good.txt")); string(b) != "Hello, World!\n" {
		t.Errorf("good.txt: %q", b)
	}
}

// fake is a server that answers /languages and hands other requests (numbered from 1) to
// answer; a nil answer refuses every request with 401.
func fake(t *testing.T, answer func(http.ResponseWriter, *http.Request, int)) *httptest.Server {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case answer == nil:
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"an API key is required"}}`)
		case r.URL.Path == "/languages":
			io.WriteString(w, `{"languages":["eng"],"default":"eng"}`)
		default:
			n++
			answer(w, r, n)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}
