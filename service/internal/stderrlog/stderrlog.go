// Package stderrlog turns what C libraries print on the process's stderr into structured log
// records, so that Tesseract's and Leptonica's chatter ("Estimating resolution as 304",
// "Error in pixReadMem") does not interleave with the JSON logs.
package stderrlog

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"
)

// Capture points fd 2 at a pipe whose lines are logged at Debug with component=tesseract.
// Go's own crash output (panics, fatal errors) still goes to the original stderr. The returned
// function points fd 2 back and waits for the last lines to be logged.
func Capture(log *slog.Logger) (restore func(), err error) {
	orig, err := unix.Dup(2)
	if err != nil {
		return nil, fmt.Errorf("dup stderr: %w", err)
	}
	origFile := os.NewFile(uintptr(orig), "stderr")
	if err := debug.SetCrashOutput(origFile, debug.CrashOptions{}); err != nil {
		origFile.Close()
		return nil, fmt.Errorf("crash output: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		origFile.Close()
		return nil, err
	}
	if err := unix.Dup2(int(w.Fd()), 2); err != nil {
		r.Close()
		w.Close()
		origFile.Close()
		return nil, fmt.Errorf("dup2: %w", err)
	}
	w.Close() // fd 2 holds the write end now

	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 4096), 64<<10)
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				log.Debug(line, "component", "tesseract")
			}
		}
	}()
	return func() {
		// origFile must stay reachable until here: its finalizer would close the saved fd.
		unix.Dup2(int(origFile.Fd()), 2) // drops the pipe's last write end: the reader sees EOF
		select {
		case <-done:
		case <-time.After(time.Second): // a leaked copy of the write end must not hang shutdown
		}
		r.Close()
	}, nil
}
