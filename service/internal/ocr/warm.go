package ocr

// Starting the engine: its private directory, the workers, PDFium compiled once.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
)

// Warm makes the engine's private directory, starts the workers (they load the default
// language at once, in parallel) and compiles PDFium, and then marks the engine ready.
// Progress is logged: on a small CPU share this takes seconds.
func (e *Engine) Warm(ctx context.Context) error {
	start := time.Now()
	if err := e.makeTempDir(); err != nil {
		return err
	}
	if e.tessdata == "" {
		dir := filepath.Join(e.tempDir, "tessdata")
		if err := e.langs.link(dir); err != nil {
			return fmt.Errorf("linking the language models: %w", err)
		}
		e.tessdata = dir
	}
	go e.compilePDFium(ctx)
	type started struct {
		p   *process
		err error
	}
	results := make(chan started, e.cfg.Workers)
	for range e.cfg.Workers {
		go func() {
			p, err := startProcess(int(e.nextID.Add(1)), e.workerConfig(), e.cfg, e.log)
			results <- started{p, err}
		}()
	}
	var errs []error
	for i := range e.cfg.Workers {
		var r started
		select {
		case r = <-results:
		case <-ctx.Done():
			// The workers still starting are shut down as they arrive.
			go func(n int) {
				for range n {
					if r := <-results; r.p != nil {
						r.p.shutdown(time.Second)
					}
				}
			}(e.cfg.Workers - i)
			return ctx.Err()
		}
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		e.mu.Lock()
		e.all[r.p] = true
		e.mu.Unlock()
		e.put(r.p)
		e.log.Info("OCR worker warm", "lang", e.cfg.DefaultLang, "n", i+1-len(errs), "of", e.cfg.Workers,
			"worker_rss_mib", r.p.rss()>>20)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	select {
	case <-e.pdfium:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	e.ready = true
	e.mu.Unlock()
	e.log.Info("OCR engine ready", "workers", e.cfg.Workers, "queue", e.cfg.QueueSize,
		"tessdata", e.langs.tessdata, "langpacks", e.langs.packs, "languages", e.langs.Names(),
		"model_memory_mib", e.cfg.ModelMemory>>20, "page_memory_mib", e.cfg.PageMemory>>20,
		"pdf", e.pdfErr == nil, "took_ms", time.Since(start).Milliseconds())
	return nil
}

// makeTempDir makes the directory only this engine writes: PDFium's compiled code (which
// workers run, so nobody else may write there) and PDF pages being written.
func (e *Engine) makeTempDir() error {
	if e.tempDir != "" {
		return nil
	}
	dir, err := os.MkdirTemp(e.cfg.TempDir, "readocr-")
	if err != nil {
		return fmt.Errorf("documents need a writable temporary directory (set TMPDIR; in a container with a read-only root, mount one at /tmp): %w", err)
	}
	e.tempDir, e.ownsTemp = dir, true
	return nil
}

func (e *Engine) pdfiumDir() string {
	if e.cfg.PDFiumCache != "" {
		return e.cfg.PDFiumCache
	}
	return e.tempDir
}

// compilePDFium compiles PDFium into the engine's directory, in a process of its own: the
// compiler's ~300 MB are given back when it exits. Documents wait for it; images do not.
func (e *Engine) compilePDFium(ctx context.Context) {
	defer close(e.pdfium)
	if e.cfg.NoPDF {
		e.pdfErr = failure.New(failure.UnsupportedMediaType, "PDF input is turned off on this server (--pdf=false)")
		return
	}
	start := time.Now()
	exe, err := os.Executable()
	if err == nil {
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), compileEnv+"="+e.pdfiumDir())
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var out []byte
		if out, err = cmd.CombinedOutput(); err != nil {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if err != nil {
		e.pdfErr = failure.Wrap(failure.Internal, err, "PDFium could not be compiled")
		e.log.Error("PDF rendering is unavailable: PDFium could not be compiled", "err", err)
		return
	}
	e.log.Info("PDFium compiled", "took_ms", time.Since(start).Milliseconds())
}

func (e *Engine) workerConfig() workerConfig {
	costs := map[string]int64{}
	for _, m := range e.langs.Models() {
		costs[m.Name] = m.Memory
	}
	return workerConfig{TessdataDir: e.tessdata, DefaultLang: e.cfg.DefaultLang,
		MaxClients: max(e.cfg.MaxClients/e.cfg.Workers, 1), ModelMemory: e.cfg.ModelMemory,
		Costs: costs, OSDMemory: e.langs.OSDMemory(), TrimEvery: trimEvery,
		TempDir: e.tempDir, PDFiumDir: e.pdfiumDir()}
}
