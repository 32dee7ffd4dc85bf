// Package proctree reads what a process and its descendants cost from /proc: the service is
// the API process and its OCR workers, and what it uses is the sum over the tree.
package proctree

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PIDs returns pid and its descendants.
func PIDs(pid int) []int {
	children := map[int][]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields are the fields of /proc/pid/stat after the command name (state, ppid, ...).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
}

// CPU is the CPU time of pid's tree, including descendants it has waited for (replaced
// workers).
func CPU(pid int) time.Duration {
	var ticks int64
	for _, p := range PIDs(pid) {
		f := statFields(p)
		if len(f) < 15 {
			continue
		}
		idx := []int{11, 12} // utime, stime
		if p == pid {
			idx = append(idx, 13, 14) // cutime, cstime
		}
		for _, i := range idx {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// KiB sums a kB field of /proc/pid/status (VmRSS, VmHWM) over pid's tree. For VmHWM the sum of
// each process's peak is an upper bound of the tree's peak.
func KiB(pid int, field string) int64 {
	var sum int64
	for _, p := range PIDs(pid) {
		sum += Status(p, field)
	}
	return sum
}

// Status reads a kB field (VmRSS, VmHWM) of /proc/pid/status.
func Status(pid int, field string) int64 {
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

// Peak samples the tree's resident memory every interval until stop is called, which returns
// the largest sum seen, in KiB.
func Peak(pid int, interval time.Duration) (stop func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			rss := KiB(pid, "VmRSS")
			mu.Lock()
			peak = max(peak, rss)
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}
