// Command readocr is the OCR service: POST /read_ocr on :4000. Run with --help for settings.
package main

import (
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
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/readocr/readocr/service/internal/cheap"
	"github.com/readocr/readocr/service/internal/config"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/httpapi"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/stderrlog"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Getenv))
	}
	ensureSingleThreadedOpenMP()
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

// ensureSingleThreadedOpenMP re-executes the process with OMP_THREAD_LIMIT=1 when it is unset.
// libgomp reads it once, when libtesseract is loaded at process start, so setting it from Go
// is too late; without it every page spawns a team of threads that fight for the same CPUs
// (3.5-6x slower under load).
func ensureSingleThreadedOpenMP() {
	if os.Getenv("OMP_THREAD_LIMIT") != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "OMP_THREAD_LIMIT=1")
	err = syscall.Exec(exe, os.Args, env)
	// Only reached if exec failed: carry on, slower.
	fmt.Fprintf(os.Stdout, `{"level":"WARN","msg":"could not re-exec with OMP_THREAD_LIMIT=1","err":%q}`+"\n", err)
}

// run is the whole service; it returns when ctx is cancelled (SIGTERM) and the server drained.
// ready, if not nil, receives the listening address once the port is open.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if cfg.CaptureStderr {
		restore, err := stderrlog.Capture(log)
		if err != nil {
			return err
		}
		defer restore()
	}
	if v := getenv("OMP_THREAD_LIMIT"); v != "1" {
		log.Warn("OMP_THREAD_LIMIT is not 1: OCR will be several times slower under load", "OMP_THREAD_LIMIT", v)
	}

	// One malloc arena per worker keeps resident memory flat under long load (see cheap); an
	// operator's MALLOC_ARENA_MAX wins.
	if getenv("MALLOC_ARENA_MAX") == "" && !cheap.LimitArenas(cfg.Workers) {
		log.Warn("could not limit malloc arenas: resident memory may creep up under long load")
	}

	engine, err := ocr.New(ocr.Config{
		TessdataDir: cfg.TessdataDir, DefaultLang: cfg.DefaultLang, Workers: cfg.Workers,
		QueueSize: cfg.QueueSize, QueueTimeout: cfg.QueueTimeout, MaxClients: cfg.MaxClients, Logger: log,
	})
	if err != nil {
		return err
	}
	fetcher := fetch.New(fetch.Config{
		ConnectTimeout: cfg.FetchConnect, Timeout: cfg.FetchTimeout, MaxBytes: cfg.MaxImageBytes,
		MaxRedirects: cfg.FetchRedirects, AllowPrivate: cfg.AllowPrivate, AllowCIDRs: cfg.AllowCIDRs,
		UserAgent: "readocr/" + version,
	})
	srv := httpapi.NewServer(log, engine, fetcher, httpapi.Limits{
		MaxImageBytes: cfg.MaxImageBytes, MaxPixels: cfg.MaxPixels, RequestTimeout: cfg.RequestTimeout,
	}, version, prometheus.NewRegistry())

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return err
	}
	// Requests derive from this context, so that pages still being recognised when the shutdown
	// time is up can be stopped rather than abandoned.
	requestsCtx, stopRequests := context.WithCancelCause(context.Background())
	defer stopRequests(nil)
	httpServer := &http.Server{
		Handler:           srv,
		BaseContext:       func(net.Listener) context.Context { return requestsCtx },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.RequestTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "version", version, "workers", cfg.Workers,
		"queue", cfg.QueueSize, "max_image_bytes", cfg.MaxImageBytes, "max_pixels", cfg.MaxPixels,
		"allow_private_urls", cfg.AllowPrivate)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	// Warm in the background: /healthz answers at once, /readyz once the models are loaded.
	warmErr := make(chan error, 1)
	go func() { warmErr <- engine.Warm(ctx) }()

	select {
	case err := <-serveErr:
		return err
	case err := <-warmErr:
		if err != nil && ctx.Err() == nil {
			httpServer.Close()
			return fmt.Errorf("warming the OCR engine: %w", err)
		}
		<-ctx.Done()
	case <-ctx.Done():
	}

	log.Info("shutting down: not ready any more", "drain_delay", cfg.DrainDelay.String(), "timeout", cfg.ShutdownTimeout.String())
	srv.Drain()
	time.Sleep(cfg.DrainDelay)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	closeCtx := shutdownCtx
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		// Time is up: stop the pages still being recognised (between words, within milliseconds)
		// so that the engine closes cleanly and their clients get an answer.
		log.Warn("shutdown time is up: stopping the requests still running", "err", err, "running", engine.Stats().Running)
		stopRequests(ocr.ErrClosed) // answered as 503 not_ready: another replica can take it
		var cancelClose context.CancelFunc
		closeCtx, cancelClose = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelClose()
	}
	if err := engine.Close(closeCtx); err != nil {
		log.Warn("OCR engine did not stop in time", "err", err)
	}
	log.Info("stopped")
	return nil
}
