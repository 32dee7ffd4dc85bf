// Package config reads the service's settings from flags, with defaults from the environment
// (PORT and OCR_*), so the same binary is configured by a ConfigMap or a command line.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the service.
type Config struct {
	Port            int
	Workers         int
	QueueSize       int
	QueueTimeout    time.Duration
	MaxClients      int
	DefaultLang     string
	TessdataDir     string
	MaxImageBytes   int64
	MaxPixels       int64
	RequestTimeout  time.Duration
	FetchTimeout    time.Duration
	FetchConnect    time.Duration
	FetchRedirects  int
	AllowPrivate    bool
	AllowCIDRs      []netip.Prefix
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration
	LogLevel        slog.Level
	CaptureStderr   bool
}

// Load parses args (without the program name). Defaults come from getenv; flags win.
// It returns flag.ErrHelp after printing usage to out for -h/--help.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	var cidrs, level string
	fs := flag.NewFlagSet("readocr", flag.ContinueOnError)
	fs.SetOutput(out)
	env := envDefaults{getenv: getenv}
	cpus := runtime.GOMAXPROCS(0) // follows the container's CPU limit (Go 1.25+)

	fs.IntVar(&c.Port, "port", env.int("PORT", 4000), "TCP port to listen on [$PORT]")
	fs.IntVar(&c.Workers, "workers", env.int("OCR_WORKERS", cpus), "pages recognised at once; default: usable CPUs [$OCR_WORKERS]")
	fs.IntVar(&c.QueueSize, "queue", env.int("OCR_QUEUE", 4*cpus), "requests that may wait for a worker; more get 429 [$OCR_QUEUE]")
	fs.DurationVar(&c.QueueTimeout, "queue-timeout", env.duration("OCR_QUEUE_TIMEOUT", 20*time.Second), "longest wait for a worker; then 503 [$OCR_QUEUE_TIMEOUT]")
	fs.IntVar(&c.MaxClients, "max-clients", env.int("OCR_MAX_CLIENTS", 0), "warm Tesseract clients across languages; default: workers+2 [$OCR_MAX_CLIENTS]")
	fs.StringVar(&c.DefaultLang, "lang", env.str("OCR_LANG", "eng"), "language when a request names none; warmed at start [$OCR_LANG]")
	fs.StringVar(&c.TessdataDir, "tessdata", env.str("TESSDATA_PREFIX", ""), "directory of .traineddata files; default: the distribution's [$TESSDATA_PREFIX]")
	fs.Int64Var(&c.MaxImageBytes, "max-image-bytes", env.int64("OCR_MAX_IMAGE_BYTES", 20<<20), "largest image accepted, uploaded or fetched [$OCR_MAX_IMAGE_BYTES]")
	fs.Int64Var(&c.MaxPixels, "max-pixels", env.int64("OCR_MAX_PIXELS", 40_000_000), "largest image in pixels (width x height) [$OCR_MAX_PIXELS]")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", env.duration("OCR_REQUEST_TIMEOUT", 60*time.Second), "budget of one request: reading, fetching, queueing and recognition [$OCR_REQUEST_TIMEOUT]")
	fs.DurationVar(&c.FetchTimeout, "fetch-timeout", env.duration("OCR_FETCH_TIMEOUT", 10*time.Second), "whole download of an image URL [$OCR_FETCH_TIMEOUT]")
	fs.DurationVar(&c.FetchConnect, "fetch-connect-timeout", env.duration("OCR_FETCH_CONNECT_TIMEOUT", 3*time.Second), "TCP and TLS connect of an image URL [$OCR_FETCH_CONNECT_TIMEOUT]")
	fs.IntVar(&c.FetchRedirects, "fetch-max-redirects", env.int("OCR_FETCH_MAX_REDIRECTS", 3), "redirects followed per image URL [$OCR_FETCH_MAX_REDIRECTS]")
	fs.BoolVar(&c.AllowPrivate, "allow-private-urls", env.bool("OCR_ALLOW_PRIVATE_URLS", false), "fetch image URLs on loopback, private and link-local addresses (unsafe on shared networks) [$OCR_ALLOW_PRIVATE_URLS]")
	fs.StringVar(&cidrs, "allow-cidrs", env.str("OCR_ALLOW_CIDRS", ""), "comma-separated networks to allow despite the SSRF rules, e.g. 10.20.0.0/16 [$OCR_ALLOW_CIDRS]")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", env.duration("OCR_SHUTDOWN_TIMEOUT", 25*time.Second), "time in-flight requests get to finish on SIGTERM [$OCR_SHUTDOWN_TIMEOUT]")
	fs.DurationVar(&c.DrainDelay, "drain-delay", env.duration("OCR_DRAIN_DELAY", 0), "on SIGTERM, keep serving while /readyz says 503 for this long [$OCR_DRAIN_DELAY]")
	fs.StringVar(&level, "log-level", env.str("OCR_LOG_LEVEL", "info"), "debug, info, warn or error; debug includes Tesseract's messages [$OCR_LOG_LEVEL]")
	fs.BoolVar(&c.CaptureStderr, "capture-stderr", env.bool("OCR_CAPTURE_STDERR", true), "log what Tesseract prints on stderr as debug records [$OCR_CAPTURE_STDERR]")

	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if env.err != nil {
		return c, env.err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return c, fmt.Errorf("log level: %w", err)
	}
	for _, s := range strings.Split(cidrs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return c, fmt.Errorf("allow-cidrs: %w", err)
		}
		c.AllowCIDRs = append(c.AllowCIDRs, p.Masked())
	}
	if c.MaxClients == 0 {
		c.MaxClients = c.Workers + 2
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", c.Port))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers must be at least 1"))
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("queue must not be negative"))
	}
	if c.MaxClients < c.Workers {
		errs = append(errs, fmt.Errorf("max-clients (%d) must be at least workers (%d)", c.MaxClients, c.Workers))
	}
	if c.MaxImageBytes < 1 || c.MaxPixels < 1 {
		errs = append(errs, fmt.Errorf("image limits must be positive"))
	}
	for name, d := range map[string]time.Duration{"queue-timeout": c.QueueTimeout, "request-timeout": c.RequestTimeout,
		"fetch-timeout": c.FetchTimeout, "fetch-connect-timeout": c.FetchConnect, "shutdown-timeout": c.ShutdownTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	return errors.Join(errs...)
}

// envDefaults reads typed defaults from the environment, remembering the first bad value.
type envDefaults struct {
	getenv func(string) string
	err    error
}

func (e *envDefaults) str(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

func parse[T any](e *envDefaults, key string, def T, conv func(string) (T, error)) T {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	out, err := conv(v)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("$%s=%q: %w", key, v, err)
	}
	if err != nil {
		return def
	}
	return out
}

func (e *envDefaults) int(key string, def int) int { return parse(e, key, def, strconv.Atoi) }
func (e *envDefaults) int64(key string, def int64) int64 {
	return parse(e, key, def, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
}
func (e *envDefaults) bool(key string, def bool) bool { return parse(e, key, def, strconv.ParseBool) }
func (e *envDefaults) duration(key string, def time.Duration) time.Duration {
	return parse(e, key, def, time.ParseDuration)
}
