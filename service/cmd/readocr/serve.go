package main

// The phases of run: the memory plan, the jobs, the listeners, the shutdown.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/readocr/readocr/service/internal/config"
	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/httpapi"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/pipeline"
)

func flushTraces(log *slog.Logger, stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		log.Warn("spans not all exported", "err", err)
	}
}

// planMemory shares the memory out: each worker's models and page, the requests' data, the
// API's Go heap, into cfg.OCR. The models are found and measured first (each loaded once,
// alone, in a process of its own, before any worker starts).
func planMemory(ctx context.Context, cfg *config.Config, getenv func(string) string, log *slog.Logger) (membudget.Plan, error) {
	limit, source := cfg.Server.MemoryLimit, "--memory-limit"
	if limit == 0 {
		limit, source = membudget.Limit()
	}
	langs, err := ocr.OpenLanguages(ctx, ocr.LanguagesConfig{TessdataDir: cfg.OCR.TessdataDir,
		LangpackDir: cfg.OCR.LangpackDir, ProbeMemory: limit - membudget.APIBase, Logger: log})
	if err != nil {
		return membudget.Plan{}, err
	}
	plan, err := membudget.NewPlan(limit, cfg.OCR.Workers, cfg.HTTP.MaxRequestBytes(), langs.WorkerModelMemory(cfg.OCR.MaxLanguages))
	if err != nil {
		return plan, err
	}
	cfg.OCR.Languages, cfg.OCR.ModelMemory = langs, plan.ModelMemory
	cfg.OCR.PageMemory, cfg.OCR.WorkerMemory = plan.PageMemory, plan.WorkerMemory()
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(plan.GoMemLimit)
	}
	colorMax, grayMax := ocr.MaxPixels(plan.PageMemory, cfg.HTTP.MaxImageBytes)
	log.Info("memory", "limit_mib", limit>>20, "from", source, "workers", plan.Workers,
		"models_mib", plan.ModelMemory>>20, "page_mib", plan.PageMemory>>20, "requests_mib", plan.RequestBytes>>20,
		"largest_colour_page_mp", float64(min(colorMax, cfg.Pipeline.MaxPixels))/1e6,
		"largest_gray_page_mp", float64(min(grayMax, cfg.Pipeline.MaxPixels))/1e6)
	return plan, nil
}

// startJobs opens the jobs broker (with --jobs), gives the API its jobs and the queue's metrics,
// and makes the runner of a process that takes jobs (every role but api); stop closes what it
// opened. Without --jobs it does nothing.
func startJobs(ctx context.Context, cfg config.Config, log *slog.Logger, srv *httpapi.Server, pipe *pipeline.Pipeline,
	budget *membudget.Budget, fetcher *fetch.Fetcher) (broker *jobs.Broker, runner *jobs.Runner, stop func(), err error) {
	if !cfg.Server.Jobs {
		return nil, nil, func() {}, nil
	}
	if broker, err = jobs.Open(ctx, cfg.Jobs, log); err != nil {
		return nil, nil, nil, fmt.Errorf("jobs: %w", err)
	}
	srv.SetJobs(jobs.New(broker, pipe))
	stopWatching, err := watchJobs(ctx, broker, srv.Work())
	if err != nil {
		broker.Close()
		return nil, nil, nil, fmt.Errorf("jobs: the queue's metrics: %w", err)
	}
	if cfg.Server.Role != "api" {
		runner = jobs.NewRunner(broker, pipe, budget, fetcher)
		runner.Record(srv.Work()) // a job's documents, pages and webhooks in the same metrics as /read_ocr's
	}
	return broker, runner, func() { stopWatching(); broker.Close() }, nil
}

// servers are the API's and the admin port's; errs gets the first of them to fail.
type servers struct {
	api, admin *http.Server
	addr       string // the API's
	errs       chan error
}

// listen opens the API's port (and the admin port) and serves them.
func listen(cfg config.Config, log *slog.Logger, srv *httpapi.Server, requestsCtx context.Context) (*servers, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Server.Port))
	if err != nil {
		return nil, err
	}
	s := &servers{addr: ln.Addr().String(), errs: make(chan error, 2)}
	s.api = &http.Server{
		Handler:           srv,
		BaseContext:       func(net.Listener) context.Context { return requestsCtx },
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		// A backstop: each request stops reading its body at its own deadline, and answers.
		ReadTimeout:    cfg.HTTP.RequestTimeout + 5*time.Second,
		IdleTimeout:    cfg.Server.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { s.errs <- s.api.Serve(httpapi.Listener(ln)) }()
	if cfg.Server.AdminPort != 0 {
		aln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Server.AdminPort))
		if err != nil {
			s.api.Close()
			return nil, fmt.Errorf("admin port: %w", err)
		}
		s.admin = &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() { s.errs <- s.admin.Serve(aln) }()
		log.Info("admin listening", "addr", aln.Addr().String())
	}
	log.Info("listening", "addr", s.addr, "version", version, "workers", cfg.OCR.Workers,
		"queue", cfg.OCR.QueueSize, "max_image_bytes", cfg.HTTP.MaxImageBytes, "max_pixels", cfg.Pipeline.MaxPixels,
		"allow_private_urls", cfg.Fetch.AllowPrivate)
	return s, nil
}

// shutDown drains: not ready, then requests and jobs finish or, when the time is up, requests
// are answered 503 and jobs go back to the queue; then the workers stop.
func shutDown(cfg config.Config, log *slog.Logger, srv *httpapi.Server, s *servers, runner *jobs.Runner, engine *ocr.Engine,
	stopRequests context.CancelCauseFunc) {
	log.Info("shutting down: not ready any more", "drain_delay", cfg.Server.DrainDelay.String(), "timeout", cfg.Server.ShutdownTimeout.String())
	// Every answer from now on says Connection: close, so that clients stop reusing connections
	// to this process and reconnect through the Service to one that is not stopping; otherwise
	// Shutdown closes many idle keep-alive connections at once, racing requests sent on them
	// (a reset seen once in 4,447 requests during a rolling update on minikube). Not
	// SetKeepAlivesEnabled(false): it closes every idle connection at once, now, while clients
	// still send on them (a reset in 5,370 requests); see httpapi.Server.ServeHTTP.
	srv.Drain()
	time.Sleep(cfg.Server.DrainDelay)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	// Jobs still running when the time is up go back to the queue, for another worker.
	runnerStopped := make(chan struct{})
	go func() {
		defer close(runnerStopped)
		if runner != nil {
			runner.Stop(shutdownCtx)
		}
	}()
	if err := s.api.Shutdown(shutdownCtx); err != nil {
		// Time is up: every request still running is told the server is stopping (503
		// not_ready: another replica can take it) and answered before the process exits; their
		// pages are stopped, or their workers killed.
		log.Warn("shutdown time is up: answering the requests still running", "err", err, "running", engine.Stats().Running)
		stopRequests(failure.ErrShutdown)
		if !srv.WaitAnswered(5 * time.Second) {
			log.Warn("some requests were not answered in time")
		}
		// Their connections go idle once the answers are flushed; then they are closed.
		flushCtx, cancelFlush := context.WithTimeout(context.Background(), 2*time.Second)
		s.api.Shutdown(flushCtx)
		cancelFlush()
		s.api.Close()
	}
	<-runnerStopped
	if s.admin != nil {
		s.admin.Close()
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	if err := engine.Close(closeCtx); err != nil {
		log.Warn("OCR workers did not stop in time: killed", "err", err)
	}
	log.Info("stopped")
}
