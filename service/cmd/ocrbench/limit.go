package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otiai10/gosseract/v2"
)

// runLimit reads n pages with one reused gosseract client per core, in this process: the
// ceiling of what any design can do with these cores. It runs in a child process started with
// OMP_THREAD_LIMIT=1.
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
