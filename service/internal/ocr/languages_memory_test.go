package ocr

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/langpacks"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// peakRSS samples the resident memory of each worker process (by pid) until stop, and returns
// each one's peak.
func peakRSS(e *Engine) (stop func() map[int]int64) {
	done := make(chan map[int]int64)
	quit := make(chan struct{})
	go func() {
		peaks := map[int]int64{}
		for {
			e.mu.Lock()
			for p := range e.all {
				peaks[p.cmd.Process.Pid] = max(peaks[p.cmd.Process.Pid], p.rss())
			}
			e.mu.Unlock()
			select {
			case <-quit:
				done <- peaks
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() map[int]int64 { close(quit); return <-done }
}

// What a model costs was measured at start in a probe process; loaded into a worker that has
// read pages and holds other models, it costs no more than that (the probe's figure carries a
// margin). Each model of the ten languages, the script models and the orientation model.
func TestModelCost(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory in the worker makes its RSS meaningless (make test runs this again without -race)")
	}
	packs := langpacks.Dir(t, append(langpacks.Ten[1:], "Latin", "Japanese")...)
	e := newEngine(t, Config{Workers: 1, MaxClients: 20, TessdataDir: langpacks.ImageTessdata(t), LangpackDir: packs})
	page := page(t, langPage(t, "deu_grundgesetz.png").Bytes)
	read := func(lang, config string) int64 {
		t.Helper()
		opts, _ := tessconfig.Parse(config)
		l, err := e.Lang(lang)
		if err != nil {
			t.Fatal(err)
		}
		before := workerRSS(e)
		if _, err := e.Recognize(context.Background(), Request{Page: page, Lang: l, Options: opts}); err != nil {
			t.Fatal(err)
		}
		return workerRSS(e) - before
	}
	read("eng", "") // the worker's page buffers, once
	read("eng", "")
	for _, m := range e.Models().Models() {
		if m.Name == "eng" {
			continue
		}
		grew := read(m.Name, "")
		t.Logf("%-8s file %5.1f MiB, measured %5.1f MiB, the worker grew %5.1f MiB", m.Name,
			float64(m.Size)/(1<<20), float64(m.Memory)/(1<<20), float64(grew)/(1<<20))
		if grew > m.Memory {
			t.Errorf("%s: loading it grew the worker by %d MiB, more than the %d MiB measured", m.Name, grew>>20, m.Memory>>20)
		}
	}
	grew := read("eng", "--psm 1") // eng's client loads the orientation model
	t.Logf("osd: measured %.1f MiB, the worker grew %.1f MiB", float64(e.Models().OSDMemory())/(1<<20), float64(grew)/(1<<20))
	if grew > e.Models().OSDMemory() {
		t.Errorf("the orientation model grew the worker by %d MiB, more than the %d MiB measured", grew>>20, e.Models().OSDMemory()>>20)
	}
}

// tenLanguages finds the ten languages (eng, the image's, and nine packs) and the memory plan's
// bound for a worker: itself, its model share, a page.
func tenLanguages(t *testing.T) (langs *Languages, share, bound int64) {
	t.Helper()
	langs, err := OpenLanguages(context.Background(), LanguagesConfig{TessdataDir: langpacks.ImageTessdata(t),
		LangpackDir: langpacks.Dir(t, langpacks.Ten[1:]...)})
	if err != nil {
		t.Fatal(err)
	}
	share = langs.WorkerModelMemory(MaxLanguages)
	bound = membudget.WorkerBase + share + testPageMemory
	t.Logf("the ten: %s; a worker's model share %d MiB, its bound %d MiB", strings.Join(langs.Names(), " "), share>>20, bound>>20)
	return langs, share, bound
}

const testPageMemory = 40 << 20 // PageCost of the deu page: 33 MiB

// loadRun reads the deu page with each of reqs ("lang" or "lang --psm 1"), the requests of one
// inner slice at once, the slices in order, on an engine of cfg; it returns each worker's peak
// resident memory and the requests' errors.
func loadRun(t *testing.T, cfg Config, reqs [][]string) (map[int]int64, []error) {
	t.Helper()
	cfg.QueueSize, cfg.PageMemory = 64, testPageMemory
	e := newEngine(t, cfg)
	img := page(t, langPage(t, "deu_grundgesetz.png").Bytes)
	stop := peakRSS(e)
	var mu sync.Mutex
	var errs []error
	for _, batch := range reqs {
		var wg sync.WaitGroup
		for _, r := range batch {
			lang, config, _ := strings.Cut(r, " ")
			wg.Go(func() {
				opts, _ := tessconfig.Parse(config)
				l, err := e.Lang(lang)
				if err == nil {
					_, err = e.Recognize(context.Background(), Request{Page: img, Lang: l, Options: opts})
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return stop(), errs
}

func checkPeaks(t *testing.T, peaks map[int]int64, errs []error, bound int64) {
	t.Helper()
	for pid, peak := range peaks {
		t.Logf("worker %d: peak %d MiB of its %d MiB", pid, peak>>20, bound>>20)
		if peak > bound {
			t.Errorf("worker %d peaked at %d MiB, over its %d MiB", pid, peak>>20, bound>>20)
		}
	}
	for _, err := range errs {
		t.Errorf("a request failed: %v", err)
	}
}

// Ten languages in use at once on two workers that keep two clients each (--max-clients 4):
// twenty single-language requests ten at a time, some with the orientation model (--psm 1),
// alongside a request naming all ten. Each worker stays within what the memory plan gives it
// (membudget.Plan.WorkerMemory: itself, its model share, a page), so none is killed (the
// engine kills one past it) and every request is read.
func TestTenLanguagesAtOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory in the worker makes its RSS meaningless (make test runs this again without -race)")
	}
	langs, share, bound := tenLanguages(t)
	var reqs [][]string
	for round := range 2 {
		batch := []string{strings.Join(langpacks.Ten, "+")}
		for i, lang := range langpacks.Ten {
			if (i+round)%3 == 0 {
				lang += " --psm 1"
			}
			batch = append(batch, lang)
		}
		reqs = append(reqs, batch)
	}
	peaks, errs := loadRun(t, Config{Workers: 2, MaxClients: 4, Languages: langs, ModelMemory: share, WorkerMemory: bound}, reqs)
	checkPeaks(t, peaks, errs, bound)
}

// The worst a worker's clients can hold: the ten languages in one client, then two more
// clients of the costliest languages with the orientation model (--max-clients 3 on one
// worker, the default). Within the model share the worker evicts and stays within its bound;
// evicting by count only (as before models were accounted), it goes past it.
func TestModelShareEvicts(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory in the worker makes its RSS meaningless (make test runs this again without -race)")
	}
	langs, share, bound := tenLanguages(t)
	reqs := [][]string{{strings.Join(langpacks.Ten, "+")}, {"jpn+chi_sim --psm 1"}, {"chi_sim+jpn+deu --psm 1"}}
	peaks, errs := loadRun(t, Config{Workers: 1, MaxClients: 3, Languages: langs, ModelMemory: share, WorkerMemory: bound}, reqs)
	checkPeaks(t, peaks, errs, bound)

	t.Run("control: evicted by count only", func(t *testing.T) {
		peaks, errs := loadRun(t, Config{Workers: 1, MaxClients: 3, Languages: langs}, reqs) // no share, no kill
		for _, peak := range peaks {
			t.Logf("without the model share: the worker peaked at %d MiB (bound %d MiB), %d errors", peak>>20, bound>>20, len(errs))
			if peak <= bound+16<<20 {
				t.Errorf("without the model share the worker peaked at %d MiB, within %d MiB of its bound: this test would not catch the share's loss", peak>>20, bound>>20)
			}
		}
	})
}
