// Command readocr is the OCR service: POST /read_ocr on :4000. Run with --help for settings.
//
// The same binary is the OCR worker: the engine starts it again, once per worker, with an
// environment variable that makes ocr.ServeIfWorker serve pages instead of returning.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/readocr/readocr/client/ocrcmd"
	"github.com/readocr/readocr/service/internal/apikey"
	"github.com/readocr/readocr/service/internal/config"
	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/httpapi"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/ratelimit"
	"github.com/readocr/readocr/service/internal/telemetry"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ocr.ServeIfWorker()
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Getenv))
	}
	if len(os.Args) > 1 && os.Args[1] == "ocr" { // the client: readocr ocr FILE|DIR|GLOB...
		os.Exit(ocrcmd.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "key" {
		os.Exit(keyCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stdout, `{"level":"ERROR","msg":"exiting","err":`+strconv.Quote(err.Error())+`}`)
		os.Exit(1)
	}
}

// healthcheck is the container's HEALTHCHECK (the image has no shell or curl): it asks the
// server on $PORT whether it is ready and exits 0 or 1.
func healthcheck(getenv func(string) string) int {
	port := getenv("PORT")
	if port == "" {
		port = "4000"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + port + "/readyz")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "readyz:", resp.Status)
		return 1
	}
	return 0
}

// run is the whole service; it returns when ctx is cancelled (SIGTERM) and the server drained.
// ready, if not nil, receives the API's listening address once the port is open.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.Server.LogLevel})))
	// Traces only when the OTEL_* variables ask for them (the exporter reads them itself).
	stopTracing, tracing, err := telemetry.Setup(ctx, getenv, version)
	if err != nil {
		return fmt.Errorf("tracing (OTEL_*): %w", err)
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(flushCtx); err != nil {
			log.Warn("spans not all exported", "err", err)
		}
	}()

	// Share the memory out: each worker's models and page, the requests' data, the API's Go
	// heap. The models are found and measured first (each loaded once, alone, in a process of
	// its own, before any worker starts).
	limit, source := cfg.Server.MemoryLimit, "--memory-limit"
	if limit == 0 {
		limit, source = membudget.Limit()
	}
	langs, err := ocr.OpenLanguages(ctx, ocr.LanguagesConfig{TessdataDir: cfg.OCR.TessdataDir,
		LangpackDir: cfg.OCR.LangpackDir, ProbeMemory: limit - membudget.APIBase, Logger: log})
	if err != nil {
		return err
	}
	plan, err := membudget.NewPlan(limit, cfg.OCR.Workers, cfg.HTTP.MaxRequestBytes(), langs.WorkerModelMemory(cfg.OCR.MaxLanguages))
	if err != nil {
		return err
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

	cfg.OCR.Logger = log
	if !cfg.Server.CaptureStderr {
		cfg.OCR.Output = os.Stderr
	}
	engine, err := ocr.New(cfg.OCR)
	if err != nil {
		return err
	}
	cfg.Fetch.UserAgent = "readocr/" + version
	budget := membudget.New(plan.RequestBytes, cfg.HTTP.MemoryWait)
	fetcher := fetch.New(cfg.Fetch)
	pipe := pipeline.New(cfg.Pipeline, engine, fetcher)
	srv := httpapi.NewServer(cfg.HTTP, log, engine, pipe, budget, version, prometheus.NewRegistry())
	if tracing {
		srv.EnableTracing()
		log.Info("tracing on", "exporter", cmp.Or(getenv("OTEL_TRACES_EXPORTER"), "otlp"))
	}
	var broker *jobs.Broker
	var runner *jobs.Runner
	if cfg.Server.Jobs {
		if broker, err = jobs.Open(ctx, cfg.Jobs, log); err != nil {
			engine.Close(context.Background())
			return fmt.Errorf("jobs: %w", err)
		}
		defer broker.Close()
		srv.SetJobs(jobs.New(broker, pipe))
		stopWatching, err := watchJobs(ctx, broker, srv.Work())
		if err != nil {
			engine.Close(context.Background())
			return fmt.Errorf("jobs: the queue's metrics: %w", err)
		}
		defer stopWatching()
		if cfg.Server.Role != "api" {
			runner = jobs.NewRunner(broker, pipe, budget, fetcher)
			runner.Record(srv.Work()) // a job's documents, pages and webhooks in the same metrics as /read_ocr's
		}
	}
	if err := setUpAccess(ctx, cfg, log, srv, broker, runner); err != nil {
		engine.Close(context.Background())
		return err
	}

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Server.Port))
	if err != nil {
		return err
	}
	// Requests derive from this context, so that those still running when the shutdown time
	// is up can be told so (503 not_ready) and answered, rather than abandoned.
	requestsCtx, stopRequests := context.WithCancelCause(context.Background())
	defer stopRequests(nil)
	httpServer := &http.Server{
		Handler:           srv,
		BaseContext:       func(net.Listener) context.Context { return requestsCtx },
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		// A backstop: each request stops reading its body at its own deadline, and answers.
		ReadTimeout:    cfg.HTTP.RequestTimeout + 5*time.Second,
		IdleTimeout:    cfg.Server.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- httpServer.Serve(httpapi.Listener(ln)) }()
	var admin *http.Server
	if cfg.Server.AdminPort != 0 {
		aln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Server.AdminPort))
		if err != nil {
			httpServer.Close()
			return fmt.Errorf("admin port: %w", err)
		}
		admin = &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() { serveErr <- admin.Serve(aln) }()
		log.Info("admin listening", "addr", aln.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", version, "workers", cfg.OCR.Workers,
		"queue", cfg.OCR.QueueSize, "max_image_bytes", cfg.HTTP.MaxImageBytes, "max_pixels", cfg.Pipeline.MaxPixels,
		"allow_private_urls", cfg.Fetch.AllowPrivate)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	// Warm in the background: /healthz answers at once, /readyz once the workers are up.
	warmErr := make(chan error, 1)
	go func() { warmErr <- engine.Warm(ctx) }()

	select {
	case err := <-serveErr:
		engine.Close(context.Background())
		return err
	case err := <-warmErr:
		if err != nil && ctx.Err() == nil {
			httpServer.Close()
			engine.Close(context.Background())
			return fmt.Errorf("warming the OCR engine: %w", err)
		}
		// Jobs are taken once the workers are up.
		if runner != nil && ctx.Err() == nil {
			if err := runner.Start(); err != nil {
				httpServer.Close()
				engine.Close(context.Background())
				return fmt.Errorf("jobs: %w", err)
			}
		}
		<-ctx.Done()
	case <-ctx.Done():
	}

	log.Info("shutting down: not ready any more", "drain_delay", cfg.Server.DrainDelay.String(), "timeout", cfg.Server.ShutdownTimeout.String())
	srv.Drain()
	// Every answer from now on says Connection: close, so that clients stop reusing connections
	// to this process and reconnect through the Service to one that is not stopping; otherwise
	// Shutdown closes many idle keep-alive connections at once, racing requests sent on them
	// (a reset seen once in 4,447 requests during a rolling update on minikube).
	httpServer.SetKeepAlivesEnabled(false)
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
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
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
		httpServer.Shutdown(flushCtx)
		cancelFlush()
		httpServer.Close()
	}
	<-runnerStopped
	if admin != nil {
		admin.Close()
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	if err := engine.Close(closeCtx); err != nil {
		log.Warn("OCR workers did not stop in time: killed", "err", err)
	}
	log.Info("stopped")
	return nil
}

// setUpAccess turns API keys on when a key file is configured (and says loudly when not), with
// limits shared through the jobs broker's key-value store (per process without a broker).
func setUpAccess(ctx context.Context, cfg config.Config, log *slog.Logger, srv *httpapi.Server, broker *jobs.Broker, runner *jobs.Runner) error {
	var limits *ratelimit.Limiter
	if broker != nil {
		kv, err := broker.KeyValue(ctx, "readocr_limits")
		if err != nil {
			return fmt.Errorf("rate limits bucket: %w", err)
		}
		limits = ratelimit.New(kv, log)
	} else {
		limits = ratelimit.New(nil, log)
	}
	if runner != nil {
		runner.CountPages(limits) // jobs' pages count against their key's quota
	}
	if cfg.Access.KeyFile == "" {
		log.Warn("API keys off: every client is served without a key (/ and /readyz say auth none); --api-keys FILE requires them")
		return nil
	}
	keys, err := apikey.Load(cfg.Access.KeyFile, log)
	if err != nil {
		return err
	}
	go keys.Watch(ctx, cfg.Access.KeyReload)
	srv.SetAuth(keys, limits)
	log.Info("API keys on", "file", cfg.Access.KeyFile, "keys", keys.Len(), "reload", cfg.Access.KeyReload.String(),
		"limits_shared", limits.Shared())
	return nil
}
