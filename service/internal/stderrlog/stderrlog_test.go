package stderrlog

import (
	"encoding/json"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/readocr/readocr/internal/testrun"
)

func TestCaptureLogsStderrLines(t *testing.T) {
	var out testrun.Buffer
	log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	stderrBefore, _ := os.Readlink("/proc/self/fd/2")
	restore, err := Capture(log)
	if err != nil {
		t.Fatal(err)
	}
	// Write to fd 2 directly, as C code does.
	unix.Write(2, []byte("Estimating resolution as 304\nError in pixReadMem: no pix\n"))
	// A long-running service collects garbage before it restores stderr: the saved descriptor
	// must survive that (it once did not, and shutdown hung waiting for the pipe to close).
	runtime.GC()
	runtime.GC()
	start := time.Now()
	restore()
	if d := time.Since(start); d > 3*time.Second { // the bug hung for good
		t.Errorf("restore took %v: stderr was not put back", d)
	}
	if target, _ := os.Readlink("/proc/self/fd/2"); strings.HasPrefix(target, "pipe:") && target != stderrBefore {
		t.Errorf("fd 2 still points at the capture pipe %s", target)
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines: %q", len(lines), out.String())
	}
	var rec struct{ Msg, Component, Level string }
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Msg != "Estimating resolution as 304" || rec.Component != "tesseract" || rec.Level != "DEBUG" {
		t.Fatalf("record %+v", rec)
	}
}
