package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/readocr/readocr/internal/testsupport/hostile"
)

// worstReport is the peak memory of the costliest requests each cap admits (and of the
// hostile files), under a stated memory limit.
type worstReport struct {
	target           hostile.Target
	colourMP, grayMP float64
	rows             []worstRow
}

type worstRow struct {
	s hostile.Scenario
	o hostile.Outcome
}

// runWorst starts bin with a 1 GiB memory limit and 2 workers (a pod of the production stack)
// and runs every hostile scenario against it, one at a time.
func runWorst(log *slog.Logger, bin string) (*worstReport, error) {
	t := hostile.Target{Workers: 2, MemoryLimit: 1 << 30, RequestTimeout: 15 * time.Second, WriteTimeout: 2 * time.Second,
		IdleTimeout: 3 * time.Second, MaxImageBytes: 20 << 20}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(hostile.Flags(t), "--port", port, "--admin-port", "0")...)
	dataDir, err := os.MkdirTemp("", "ocrbench-jobs-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataDir)
	cmd.Env = append(os.Environ(), "OCR_DATA_DIR="+dataDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	rep := &worstReport{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var rec struct {
			Msg      string
			PageMiB  int     `json:"page_mib"`
			ColourMP float64 `json:"largest_colour_page_mp"`
			GrayMP   float64 `json:"largest_gray_page_mp"`
		}
		json.Unmarshal(sc.Bytes(), &rec)
		if rec.Msg == "memory" {
			t.PageMemory, rep.colourMP, rep.grayMP = int64(rec.PageMiB)<<20, rec.ColourMP, rec.GrayMP
		}
		if rec.Msg == "listening" {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	t.PID, t.Base = cmd.Process.Pid, "http://127.0.0.1:"+port
	if _, err := waitReady(t.Base); err != nil {
		return nil, err
	}
	rep.target = t
	for i, s := range hostile.All() {
		log.Info("worst case", "n", i+1, "of", len(hostile.All()), "case", s.Name)
		o := hostile.Run(t, s)
		if problem := s.Check(t, o); problem != "" {
			return nil, fmt.Errorf("%s: %s", s.Name, problem)
		}
		rep.rows = append(rep.rows, worstRow{s, o})
	}
	return rep, nil
}

func (w *worstReport) render(b *strings.Builder) {
	t := w.target
	fmt.Fprintf(b, "\n### Worst cases the caps admit, and hostile files\n\n"+
		"The service started with `--memory-limit %dMi --workers %d`: %d MiB a page per worker; "+
		"pages admitted up to %.1f MP in colour and %.1f MP in grayscale whatever their encoding (larger when their file is small). "+
		"Each case alone; the service's resident memory (API process and workers) sampled every 10 ms.\n\n",
		t.MemoryLimit>>20, t.Workers, t.PageMemory>>20, w.colourMP, w.grayMP)
	b.WriteString("| class | case | answers | slowest | peak RSS MiB | of the limit |\n|---|---|---|---:|---:|---:|\n")
	var peaks []int64
	for _, r := range w.rows {
		var answers []string
		for status, n := range r.o.Statuses {
			a := fmt.Sprintf("%d x %d", n, status)
			if status == -1 {
				a = fmt.Sprintf("%d dropped", n)
			}
			answers = append(answers, a)
		}
		slices.Sort(answers)
		name := r.s.Name
		if r.o.Note != "" && strings.Contains(r.s.Class, "cap") {
			name += " (" + r.o.Note + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.1f s | %d | %.0f %% |\n", r.s.Class, name, strings.Join(answers, ", "),
			r.o.Took.Seconds(), r.o.PeakKiB>>10, 100*float64(r.o.PeakKiB<<10)/float64(t.MemoryLimit))
		peaks = append(peaks, r.o.PeakKiB)
	}
	fmt.Fprintf(b, "\nHighest: %d MiB of %d MiB.\n", slices.Max(peaks)>>10, t.MemoryLimit>>20)
}
