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
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/readocr/readocr/client/ocrcmd"
	"github.com/readocr/readocr/service/internal/apikey"
	"github.com/readocr/readocr/service/internal/config"
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
	defer flushTraces(log, stopTracing)
	plan, err := planMemory(ctx, &cfg, getenv, log)
	if err != nil {
		return err
	}

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
	broker, runner, stopJobs, err := startJobs(ctx, cfg, log, srv, pipe, budget, fetcher)
	if err != nil {
		engine.Close(context.Background())
		return err
	}
	defer stopJobs()
	if err := setUpAccess(ctx, cfg, log, srv, broker, runner); err != nil {
		engine.Close(context.Background())
		return err
	}

	// Requests derive from this context, so that those still running when the shutdown time
	// is up can be told so (503 not_ready) and answered, rather than abandoned.
	requestsCtx, stopRequests := context.WithCancelCause(context.Background())
	defer stopRequests(nil)
	servers, err := listen(cfg, log, srv, requestsCtx)
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- servers.addr
	}

	// Warm in the background: /healthz answers at once, /readyz once the workers are up.
	warmErr := make(chan error, 1)
	go func() { warmErr <- engine.Warm(ctx) }()
	select {
	case err := <-servers.errs:
		engine.Close(context.Background())
		return err
	case err := <-warmErr:
		if err != nil && ctx.Err() == nil {
			servers.api.Close()
			engine.Close(context.Background())
			return fmt.Errorf("warming the OCR engine: %w", err)
		}
		// Jobs are taken once the workers are up.
		if runner != nil && ctx.Err() == nil {
			if err := runner.Start(); err != nil {
				servers.api.Close()
				engine.Close(context.Background())
				return fmt.Errorf("jobs: %w", err)
			}
		}
		<-ctx.Done()
	case <-ctx.Done():
	}
	shutDown(cfg, log, srv, servers, runner, engine, stopRequests)
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
