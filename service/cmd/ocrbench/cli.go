package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

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
