// Package config fills each component's own configuration (with its own defaults) from flags,
// with defaults from the environment (PORT and OCR_*), so the same binary is configured by a
// ConfigMap or a command line. Nothing here is copied field by field: the flags write into
// the components' structs.
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

	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/httpapi"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/webhook"
)

// Server is how the process serves: ports, shutdown, logs, memory.
type Server struct {
	Port              int
	AdminPort         int // metrics and profiling; 0 turns it off
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	DrainDelay        time.Duration
	LogLevel          slog.Level
	CaptureStderr     bool
	MemoryLimit       int64  // the whole service's memory, API and workers; 0: the cgroup's
	Jobs              bool   // POST /jobs and its workers
	Role              string // all, api (queues jobs, runs none) or worker (runs jobs)
}

// Access is who may use the API: the key file (API keys, their scopes and limits).
type Access struct {
	KeyFile   string        // "": API keys off, every client served
	KeyReload time.Duration // how often the key file is read again (revocation without a restart)
}

// Config is every setting of the service, by the component that uses it.
type Config struct {
	Server   Server
	HTTP     httpapi.Config
	Pipeline pipeline.Config
	OCR      ocr.Config
	Fetch    fetch.Config
	Jobs     jobs.Config
	Access   Access
}

// Default is the configuration with no flag or variable set.
func Default() Config {
	cpus := runtime.GOMAXPROCS(0) // follows the container's CPU limit (Go 1.25+)
	return Config{
		Server: Server{Port: 4000, AdminPort: 9090, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
			ShutdownTimeout: 25 * time.Second, CaptureStderr: true, Jobs: true, Role: "all"},
		HTTP:     httpapi.DefaultConfig(),
		Pipeline: pipeline.DefaultConfig(),
		OCR:      ocr.DefaultConfig(cpus),
		Fetch:    fetch.DefaultConfig(),
		Jobs:     jobs.DefaultConfig(),
		Access:   Access{KeyReload: 5 * time.Second},
	}
}

// Load parses args (without the program name). Defaults come from getenv; flags win.
// It returns flag.ErrHelp after printing usage to out for -h/--help.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Default()
	var cidrs, level, memory, schedule string
	fs := flag.NewFlagSet("readocr", flag.ContinueOnError)
	fs.SetOutput(out)
	e := envDefaults{getenv: getenv}
	s, h, o, f, j := &c.Server, &c.HTTP, &c.OCR, &c.Fetch, &c.Jobs

	fs.IntVar(&s.Port, "port", e.int("PORT", s.Port), "TCP port of the API [$PORT]")
	fs.IntVar(&s.AdminPort, "admin-port", e.int("OCR_ADMIN_PORT", s.AdminPort), "TCP port of /metrics and /debug/pprof (not for clients); 0: off [$OCR_ADMIN_PORT]")
	fs.IntVar(&o.Workers, "workers", e.int("OCR_WORKERS", o.Workers), "OCR worker processes: pages recognised at once; default: usable CPUs [$OCR_WORKERS]")
	fs.IntVar(&o.QueueSize, "queue", e.int("OCR_QUEUE", o.QueueSize), "requests that may wait for a worker; more get 429; default: 4 x CPUs [$OCR_QUEUE]")
	fs.DurationVar(&o.QueueTimeout, "queue-timeout", e.duration("OCR_QUEUE_TIMEOUT", o.QueueTimeout), "longest wait for a worker; then 503 [$OCR_QUEUE_TIMEOUT]")
	fs.IntVar(&o.MaxClients, "max-clients", e.int("OCR_MAX_CLIENTS", 0), "languages kept loaded over all workers (each keeps at least one); default: workers+2 [$OCR_MAX_CLIENTS]")
	fs.StringVar(&o.DefaultLang, "lang", e.str("OCR_LANG", o.DefaultLang), "language when a request names none; loaded at start [$OCR_LANG]")
	fs.StringVar(&o.TessdataDir, "tessdata", e.str("TESSDATA_PREFIX", o.TessdataDir), "directory of .traineddata files; default: the distribution's [$TESSDATA_PREFIX]")
	fs.StringVar(&o.LangpackDir, "langpacks", e.str("OCR_LANGPACKS", o.LangpackDir), "directory of language packs (.traineddata files, up to 3 levels down) added to --tessdata's; default: "+ocr.DefaultLangpackDir+" when it exists [$OCR_LANGPACKS]")
	fs.IntVar(&o.MaxLanguages, "max-languages", e.int("OCR_MAX_LANGUAGES", o.MaxLanguages), "models one request may name (lang=a+b+...); each worker keeps memory for this many of the costliest installed [$OCR_MAX_LANGUAGES]")
	fs.StringVar(&memory, "memory-limit", e.str("OCR_MEMORY_LIMIT", ""), "memory of the whole service (API and workers), e.g. 1Gi; shared out at start; default: the cgroup's limit, else half the machine's memory [$OCR_MEMORY_LIMIT]")
	fs.Int64Var(&h.MaxImageBytes, "max-image-bytes", e.int64("OCR_MAX_IMAGE_BYTES", h.MaxImageBytes), "largest image or document accepted, uploaded or fetched [$OCR_MAX_IMAGE_BYTES]")
	fs.Int64Var(&c.Pipeline.MaxPixels, "max-pixels", e.int64("OCR_MAX_PIXELS", c.Pipeline.MaxPixels), "largest image in pixels (width x height); the memory limit may admit less [$OCR_MAX_PIXELS]")
	pdf := true
	fs.BoolVar(&pdf, "pdf", e.bool("OCR_PDF", true), "read PDFs; false skips compiling PDFium at start (~4 s of a CPU, ~300 MB for a moment) [$OCR_PDF]")
	fs.IntVar(&c.Pipeline.MaxPages, "max-pages", e.int("OCR_MAX_PAGES", c.Pipeline.MaxPages), "most pages of a PDF or TIFF one request may read (checked before any is rendered) [$OCR_MAX_PAGES]")
	fs.IntVar(&c.Pipeline.DocumentWorkers, "document-workers", e.int("OCR_DOCUMENT_WORKERS", 0), "workers one document may use at once (single pages always go first); default: all [$OCR_DOCUMENT_WORKERS]")
	fs.DurationVar(&h.RequestTimeout, "request-timeout", e.duration("OCR_REQUEST_TIMEOUT", h.RequestTimeout), "time limit of one request: reading, fetching, queueing and recognition [$OCR_REQUEST_TIMEOUT]")
	fs.DurationVar(&h.WriteTimeout, "write-timeout", e.duration("OCR_WRITE_TIMEOUT", h.WriteTimeout), "time a client has to take its response [$OCR_WRITE_TIMEOUT]")
	fs.DurationVar(&s.IdleTimeout, "idle-timeout", e.duration("OCR_IDLE_TIMEOUT", s.IdleTimeout), "keep-alive connections idle this long are closed [$OCR_IDLE_TIMEOUT]")
	fs.DurationVar(&h.MemoryWait, "memory-wait", e.duration("OCR_MEMORY_WAIT", h.MemoryWait), "longest wait for a request's share of memory; then 503 [$OCR_MEMORY_WAIT]")
	fs.DurationVar(&f.Timeout, "fetch-timeout", e.duration("OCR_FETCH_TIMEOUT", f.Timeout), "whole download of an image URL [$OCR_FETCH_TIMEOUT]")
	fs.DurationVar(&f.ConnectTimeout, "fetch-connect-timeout", e.duration("OCR_FETCH_CONNECT_TIMEOUT", f.ConnectTimeout), "TCP and TLS connect of an image URL [$OCR_FETCH_CONNECT_TIMEOUT]")
	fs.IntVar(&f.MaxRedirects, "fetch-max-redirects", e.int("OCR_FETCH_MAX_REDIRECTS", f.MaxRedirects), "redirects followed per image URL [$OCR_FETCH_MAX_REDIRECTS]")
	fs.BoolVar(&f.AllowPrivate, "allow-private-urls", e.bool("OCR_ALLOW_PRIVATE_URLS", f.AllowPrivate), "fetch image URLs on loopback, private and link-local addresses (unsafe on shared networks) [$OCR_ALLOW_PRIVATE_URLS]")
	fs.StringVar(&cidrs, "allow-cidrs", e.str("OCR_ALLOW_CIDRS", ""), "comma-separated networks to allow despite the SSRF rules, e.g. 10.20.0.0/16 [$OCR_ALLOW_CIDRS]")
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", e.duration("OCR_SHUTDOWN_TIMEOUT", s.ShutdownTimeout), "time in-flight requests get to finish on SIGTERM [$OCR_SHUTDOWN_TIMEOUT]")
	fs.DurationVar(&s.DrainDelay, "drain-delay", e.duration("OCR_DRAIN_DELAY", s.DrainDelay), "on SIGTERM, keep serving while /readyz says 503 for this long [$OCR_DRAIN_DELAY]")
	fs.StringVar(&level, "log-level", e.str("OCR_LOG_LEVEL", "info"), "debug, info, warn or error; debug includes Tesseract's messages [$OCR_LOG_LEVEL]")
	fs.BoolVar(&s.CaptureStderr, "capture-stderr", e.bool("OCR_CAPTURE_STDERR", s.CaptureStderr), "log what the OCR workers (Tesseract, Leptonica) print as debug records; false: pass it to stderr [$OCR_CAPTURE_STDERR]")
	fs.BoolVar(&s.Jobs, "jobs", e.bool("OCR_JOBS", s.Jobs), "serve POST /jobs (asynchronous OCR on NATS JetStream) [$OCR_JOBS]")
	fs.StringVar(&s.Role, "role", e.str("OCR_ROLE", s.Role), "all; api: queues jobs and runs none; worker: runs jobs (both need --nats-url) [$OCR_ROLE]")
	fs.StringVar(&j.NATSURL, "nats-url", e.str("OCR_NATS_URL", ""), "NATS cluster for jobs, e.g. nats://nats:4222; default: a JetStream server embedded in this process [$OCR_NATS_URL]")
	fs.DurationVar(&j.NATSWait, "nats-wait", e.duration("OCR_NATS_WAIT", j.NATSWait), "how long to wait at start for --nats-url to answer (NATS may start with readocr) [$OCR_NATS_WAIT]")
	fs.IntVar(&j.Replicas, "nats-replicas", e.int("OCR_NATS_REPLICAS", 1), "copies JetStream keeps of each job (3 on a 3-server cluster) [$OCR_NATS_REPLICAS]")
	fs.StringVar(&j.DataDir, "data-dir", e.str("OCR_DATA_DIR", j.DataDir), "where the embedded JetStream server keeps jobs (survives a restart) [$OCR_DATA_DIR]")
	fs.DurationVar(&j.TTL, "job-ttl", e.duration("OCR_JOB_TTL", j.TTL), "how long a finished job and its result are kept [$OCR_JOB_TTL]")
	fs.IntVar(&j.MaxQueued, "max-queued-jobs", e.int("OCR_MAX_QUEUED_JOBS", j.MaxQueued), "jobs that may wait; more get 429 [$OCR_MAX_QUEUED_JOBS]")
	fs.DurationVar(&j.Timeout, "job-timeout", e.duration("OCR_JOB_TIMEOUT", j.Timeout), "time limit of one job [$OCR_JOB_TIMEOUT]")
	fs.IntVar(&j.Concurrency, "job-concurrency", e.int("OCR_JOB_CONCURRENCY", 0), "jobs this process runs at once; default: 2 x workers [$OCR_JOB_CONCURRENCY]")
	fs.IntVar(&j.SplitPages, "job-split-pages", e.int("OCR_JOB_SPLIT_PAGES", j.SplitPages), "a job's document of this many pages or more is read as page tasks, spread over every worker process; 0: never [$OCR_JOB_SPLIT_PAGES]")
	fs.IntVar(&j.PageWindow, "job-page-window", e.int("OCR_JOB_PAGE_WINDOW", j.PageWindow), "page tasks of one job queued at a time: another job's pages wait behind at most this many [$OCR_JOB_PAGE_WINDOW]")
	fs.DurationVar(&j.AckWait, "job-ack-wait", e.duration("OCR_JOB_ACK_WAIT", j.AckWait), "a worker silent this long is taken for dead and its job given to another [$OCR_JOB_ACK_WAIT]")
	fs.IntVar(&j.MaxDeliver, "job-max-deliver", e.int("OCR_JOB_MAX_DELIVER", j.MaxDeliver), "times a job is given to a worker before it fails as worker_lost [$OCR_JOB_MAX_DELIVER]")
	fs.StringVar(&j.WebhookSecret, "webhook-secret", e.str("OCR_WEBHOOK_SECRET", ""), "secret that signs job callbacks (Standard Webhooks: whsec_<base64>, or any string); comma-separated for a rotation (one signature each); callbacks are refused without one [$OCR_WEBHOOK_SECRET]")
	// Access control: API keys, callbacks' retries, the broker's credentials.
	a, na := &c.Access, &j.NATSAuth
	fs.StringVar(&a.KeyFile, "api-keys", e.str("OCR_API_KEYS", ""), "key file (YAML: id, sha256, scopes, limits; readocr key new makes a key): every route but the probes then needs a key; default: no keys, every client served [$OCR_API_KEYS]")
	fs.DurationVar(&a.KeyReload, "api-keys-reload", e.duration("OCR_API_KEYS_RELOAD", a.KeyReload), "how often the key file is read again: a key removed from it is refused from then on [$OCR_API_KEYS_RELOAD]")
	fs.StringVar(&schedule, "webhook-retry-schedule", e.str("OCR_WEBHOOK_RETRY_SCHEDULE", durations(j.WebhookSchedule)), "waits before each retry of a callback not answered 2xx; then a dead letter [$OCR_WEBHOOK_RETRY_SCHEDULE]")
	fs.DurationVar(&j.WebhookTimeout, "webhook-timeout", e.duration("OCR_WEBHOOK_TIMEOUT", j.WebhookTimeout), "time a callback's receiver has to answer one attempt [$OCR_WEBHOOK_TIMEOUT]")
	fs.StringVar(&na.User, "nats-user", e.str("OCR_NATS_USER", ""), "user for --nats-url (with --nats-password) [$OCR_NATS_USER]")
	fs.StringVar(&na.Password, "nats-password", e.str("OCR_NATS_PASSWORD", ""), "password of --nats-user (prefer the variable: flags show in ps) [$OCR_NATS_PASSWORD]")
	fs.StringVar(&na.NKey, "nats-nkey", e.str("OCR_NATS_NKEY", ""), "file with an NKey seed for --nats-url [$OCR_NATS_NKEY]")
	fs.StringVar(&na.Creds, "nats-creds", e.str("OCR_NATS_CREDS", ""), "NATS .creds file (user JWT and seed) for --nats-url [$OCR_NATS_CREDS]")
	fs.StringVar(&na.CA, "nats-ca", e.str("OCR_NATS_CA", ""), "CA certificate (PEM) that signed the NATS server's; turns TLS on [$OCR_NATS_CA]")
	fs.StringVar(&na.Cert, "nats-cert", e.str("OCR_NATS_CERT", ""), "client certificate (PEM) for NATS servers that verify clients, with --nats-key [$OCR_NATS_CERT]")
	fs.StringVar(&na.Key, "nats-key", e.str("OCR_NATS_KEY", ""), "the client certificate's private key (PEM) [$OCR_NATS_KEY]")

	var err error
	if err = fs.Parse(args); err != nil {
		return c, err
	}
	if e.err != nil {
		return c, e.err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := s.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return c, fmt.Errorf("log level: %w", err)
	}
	for _, v := range strings.Split(cidrs, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return c, fmt.Errorf("allow-cidrs: %w", err)
		}
		f.AllowCIDRs = append(f.AllowCIDRs, p.Masked())
	}
	if memory != "" {
		n, err := ParseBytes(memory)
		if err != nil {
			return c, fmt.Errorf("memory-limit: %w", err)
		}
		s.MemoryLimit = n
	}
	if o.MaxClients == 0 {
		o.MaxClients = o.Workers + 2
	}
	o.NoPDF = !pdf
	f.MaxBytes = h.MaxImageBytes
	if j.WebhookSchedule, err = parseDurations(schedule); err != nil {
		return c, fmt.Errorf("webhook-retry-schedule: %w", err)
	}
	if j.Concurrency == 0 {
		// Twice the workers: while a job stores its result and takes the next, another job's
		// page keeps the worker busy.
		j.Concurrency = 2 * o.Workers
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	for name, p := range map[string]int{"port": c.Server.Port, "admin-port": c.Server.AdminPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s %d out of range", name, p))
		}
	}
	if c.Server.AdminPort != 0 && c.Server.AdminPort == c.Server.Port {
		errs = append(errs, fmt.Errorf("admin-port must differ from port"))
	}
	switch c.Server.Role {
	case "all":
	case "api", "worker":
		if c.Jobs.NATSURL == "" {
			errs = append(errs, fmt.Errorf("role %s needs --nats-url: an embedded broker serves only its own process", c.Server.Role))
		}
	default:
		errs = append(errs, fmt.Errorf("role %q is not all, api or worker", c.Server.Role))
	}
	if c.Jobs.SplitPages < 0 || c.Jobs.PageWindow < 1 {
		errs = append(errs, fmt.Errorf("job-split-pages must not be negative and job-page-window must be at least 1"))
	}
	if c.Jobs.MaxQueued < 1 || c.Jobs.MaxDeliver < 1 || c.Jobs.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("max-queued-jobs, job-max-deliver and job-concurrency must be at least 1"))
	}
	if c.OCR.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers must be at least 1"))
	}
	if c.OCR.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("queue must not be negative"))
	}
	if c.OCR.MaxLanguages < 1 || c.OCR.MaxLanguages > ocr.MaxLanguages {
		errs = append(errs, fmt.Errorf("max-languages must be 1 to %d", ocr.MaxLanguages))
	}
	if c.OCR.MaxClients < c.OCR.Workers {
		errs = append(errs, fmt.Errorf("max-clients (%d) must be at least workers (%d)", c.OCR.MaxClients, c.OCR.Workers))
	}
	if c.Pipeline.MaxPages < 1 || c.Pipeline.DocumentWorkers < 0 {
		errs = append(errs, fmt.Errorf("max-pages must be at least 1 and document-workers not negative"))
	}
	if c.HTTP.MaxImageBytes < 1 || c.Pipeline.MaxPixels < 1 || c.Server.MemoryLimit < 0 {
		errs = append(errs, fmt.Errorf("image and memory limits must be positive"))
	}
	for name, d := range map[string]time.Duration{"queue-timeout": c.OCR.QueueTimeout, "request-timeout": c.HTTP.RequestTimeout,
		"write-timeout": c.HTTP.WriteTimeout, "memory-wait": c.HTTP.MemoryWait, "fetch-timeout": c.Fetch.Timeout,
		"fetch-connect-timeout": c.Fetch.ConnectTimeout, "shutdown-timeout": c.Server.ShutdownTimeout, "idle-timeout": c.Server.IdleTimeout,
		"job-ttl": c.Jobs.TTL, "job-timeout": c.Jobs.Timeout, "job-ack-wait": c.Jobs.AckWait,
		"api-keys-reload": c.Access.KeyReload, "webhook-timeout": c.Jobs.WebhookTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if _, err := webhook.NewSigner(c.Jobs.WebhookSecret); err != nil {
		errs = append(errs, err)
	}
	if (c.Jobs.NATSAuth != jobs.NATSAuth{}) && c.Jobs.NATSURL == "" {
		errs = append(errs, fmt.Errorf("the NATS credentials (--nats-user, --nats-nkey, --nats-creds, --nats-ca ...) are for --nats-url"))
	}
	return errors.Join(errs...)
}

// parseDurations reads "5s,30s,2m".
func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration", v)
		}
		out = append(out, d)
	}
	return out, nil
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		v := d.String() // 2m0s reads as 2m, 1h0m0s as 1h
		if strings.HasSuffix(v, "m0s") {
			v = strings.TrimSuffix(v, "0s")
		}
		if strings.HasSuffix(v, "h0m") {
			v = strings.TrimSuffix(v, "0m")
		}
		s = append(s, v)
	}
	return strings.Join(s, ",")
}

// ParseBytes reads a size in bytes, with Kubernetes' binary suffixes (Ki, Mi, Gi; "B" after
// them is allowed, as in GOMEMLIMIT).
func ParseBytes(s string) (int64, error) {
	v := strings.TrimSuffix(strings.TrimSpace(s), "B")
	mult := int64(1)
	for suffix, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40} {
		if strings.HasSuffix(v, suffix) {
			v, mult = strings.TrimSuffix(v, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size in bytes (e.g. 1073741824, 1Gi, 512Mi)", s)
	}
	return n * mult, nil
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
