package ocr

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// probeEnv makes ServeIfWorker load the model file it names, print what that cost and exit.
const probeEnv = "READOCR_OCR_PROBE_MODEL"

// probeTimeout bounds loading one model (the largest, Latin at 85 MB, takes ~0.6 s here).
const probeTimeout = time.Minute

// Measured at start, a model's cost gets this margin: allocations land differently in a
// worker that has read pages, and a worker loads its models in any order.
const (
	probeMarginRatio = 8       // an eighth
	probeMarginMin   = 4 << 20 // rus: 12.3 MiB in the probe, 14.9 in a worker (TestModelCost)
)

// What the probe found for a file, kept for the process's life so that tests that start many
// engines load each model once.
type probeKey struct {
	path  string
	size  int64
	mtime time.Time
	ino   uint64
}

type probeResult struct {
	memory  int64
	problem string
}

var (
	probeMu    sync.Mutex
	probeCache = map[probeKey]probeResult{}
)

// probeModels measures each model that passed checkModelFile, one process each, one after the
// other (their memory does not add up). Measured in a fresh process, the cost includes
// Tesseract's own start (a few MiB), which is the margin a worker's first model needs.
func probeModels(ctx context.Context, models []*Model, capBytes int64, log *slog.Logger) {
	start := time.Now()
	probed := 0
	for _, m := range models {
		if m.Problem != "" {
			continue
		}
		key, ok := fileKey(m.path)
		probeMu.Lock()
		r, cached := probeCache[key]
		probeMu.Unlock()
		if !cached || !ok {
			r = probeOne(ctx, m.path, capBytes)
			probed++
			if ok && ctx.Err() == nil {
				probeMu.Lock()
				probeCache[key] = r
				probeMu.Unlock()
			}
		}
		m.Memory, m.Problem = r.memory, r.problem
	}
	if probed > 0 {
		log.Info("language models measured", "models", probed, "took_ms", time.Since(start).Milliseconds())
	}
}

func fileKey(path string) (probeKey, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return probeKey{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return probeKey{}, false
	}
	return probeKey{path: path, size: fi.Size(), mtime: fi.ModTime(), ino: st.Ino}, true
}

// probeOne loads one model in a process of its own, killed past capBytes or probeTimeout.
func probeOne(ctx context.Context, path string, capBytes int64) probeResult {
	exe, err := os.Executable()
	if err != nil {
		return probeResult{problem: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), probeEnv+"="+path, "OMP_THREAD_LIMIT=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return probeResult{problem: err.Error()}
	}
	tooBig := make(chan int64, 1)
	done := make(chan struct{})
	go func() { // a garbled size field can make Tesseract allocate without bound
		t := time.NewTicker(watchEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if rss := pidRSS(cmd.Process.Pid); rss > capBytes {
					tooBig <- rss
					cmd.Process.Kill()
					return
				}
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var out struct{ Memory int64 }
	select {
	case rss := <-tooBig:
		return probeResult{problem: fmt.Sprintf("loading it took over %d MiB (stopped at %d MiB)", capBytes>>20, rss>>20)}
	default:
	}
	if ctx.Err() != nil {
		return probeResult{problem: fmt.Sprintf("loading it did not finish within %v", probeTimeout)}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() != 1 {
		// Not the probe's own refusal (exit 1) but a crash: Tesseract aborts on some corrupt
		// models (ASSERT_HOST), and prints nothing (stderr is closed while it loads a model).
		return probeResult{problem: fmt.Sprintf("loading it crashed Tesseract's process (%v)", err)}
	}
	if err != nil || json.Unmarshal(stdout.Bytes(), &out) != nil || out.Memory <= 0 {
		return probeResult{problem: "Tesseract cannot load it: " + tesseractComplaint(stderr.String(), err)}
	}
	return probeResult{memory: out.Memory + max(out.Memory/probeMarginRatio, probeMarginMin)}
}

// tesseractComplaint is the gist of what Tesseract printed when a model did not load.
func tesseractComplaint(stderr string, err error) string {
	var lines []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.Contains(line, "TESSDATA_PREFIX") {
			lines = append(lines, line)
		}
	}
	msg := strings.Join(lines, "; ")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	if err != nil {
		msg = strings.TrimPrefix(msg+" ("+err.Error()+")", " ")
	}
	return msg
}

// serveProbe is the probe process: it loads one model as a worker would and prints, as JSON,
// how much its resident memory grew. The orientation model is loaded as a language: that costs
// what a client that reads a page with --psm 0 or 1 grows by when it loads it (31-32 MiB both
// ways, measured).
func serveProbe(path string) error {
	before := selfRSS()
	c, err := newClient(filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), ".traineddata"))
	if err != nil {
		return err
	}
	defer c.tess.Close()
	return json.NewEncoder(os.Stdout).Encode(struct{ Memory int64 }{selfRSS() - before})
}

// checkModelFile reads a .traineddata file's table of contents (Tesseract's TessdataManager
// format: an entry count, then an offset for each, -1 for an absent one) and says what is
// wrong with it: a copy cut short, a file that is not a model, a model without the LSTM
// recogniser (the only engine the service runs). "" when nothing is.
func checkModelFile(path string, osd bool) string {
	const numEntries, lstmEntry = 24, 17 // TESSDATA_NUM_ENTRIES, TESSDATA_LSTM (tessdatamanager.h)
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	var n uint32
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil || n == 0 || n > numEntries {
		return "not a Tesseract model (no table of contents at its start)"
	}
	offsets := make([]int64, n)
	if err := binary.Read(f, binary.LittleEndian, offsets); err != nil {
		return "truncated: its table of contents is cut short"
	}
	prev := int64(4 + 8*n)
	for i, off := range offsets {
		if off == -1 {
			continue
		}
		if off < prev || off > fi.Size() {
			if off > fi.Size() {
				return fmt.Sprintf("truncated: entry %d starts at byte %d, the file has %d (a copy cut short?)", i, off, fi.Size())
			}
			return "not a Tesseract model (its table of contents is out of order)"
		}
		prev = off
	}
	if !osd && (int(n) <= lstmEntry || offsets[lstmEntry] == -1) {
		return "no LSTM model in it (a Tesseract 3 legacy model? the service reads with the LSTM engine)"
	}
	return ""
}

// pidRSS is a process's resident memory in bytes (0 once it is gone).
func pidRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
