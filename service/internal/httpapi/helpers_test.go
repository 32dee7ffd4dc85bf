package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/readocr/readocr/internal/testsupport"
	"github.com/readocr/readocr/internal/testsupport/syncbuffer"
	"github.com/readocr/readocr/service/api"
	"github.com/readocr/readocr/service/internal/apikey"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/ratelimit"
	"github.com/readocr/readocr/service/internal/telemetry"
)

// The engine's workers are this test binary started again: ServeIfWorker serves then.
func TestMain(m *testing.M) {
	ocr.ServeIfWorker()
	// The renderings are checked byte for byte by the tests; the contract checks their type.
	for _, ct := range []string{"text/html", "application/xml", "text/tab-separated-values", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
	openapi3filter.RegisterBodyDecoder("application/pdf", openapi3filter.FileBodyDecoder)
	os.Exit(m.Run())
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
}

type options struct {
	workers, queue int
	queueTimeout   time.Duration
	allowPrivate   bool
	maxImageBytes  int64
	fetchTimeout   time.Duration
	requestTimeout time.Duration
	requestMemory  int64 // the request data budget; default: plenty
	memoryWait     time.Duration
	pageMemory     int64
	writeTimeout   time.Duration
	maxPages       int
	jobs           *jobs.Config // turns jobs on (DataDir: a temporary one if empty)
	noRunner       bool         // jobs are queued, none is run (until startRunner)
	keys           string       // a key file's content: turns API keys on (auth_test.go)
	tessdata       string       // the image's models ("": the system's)
	langpacks      string       // a language pack directory (languages_test.go)
	tracing        bool         // requests in spans (EnableTracing), to the global provider
}

// harness is a real server (real engine, real fetcher) behind httptest, plus the contract.
type harness struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	admin  *httptest.Server
	logs   *syncbuffer.Buffer
	router routers.Router
	doc    *openapi3.T
	budget *membudget.Budget

	pipe    *pipeline.Pipeline
	fetcher *fetch.Fetcher
	jobCfg  jobs.Config
	broker  *jobs.Broker
	runner  *jobs.Runner

	keyFile string             // with options.keys
	keyring *apikey.Keyring    // with options.keys
	limits  *ratelimit.Limiter // over the broker's KV with jobs, else in the process
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	if o.workers == 0 {
		o.workers = 2
	}
	if o.queueTimeout == 0 {
		o.queueTimeout = 30 * time.Second
	}
	if o.maxImageBytes == 0 {
		o.maxImageBytes = 2 << 20
	}
	if o.requestTimeout == 0 {
		o.requestTimeout = time.Minute
	}
	if o.fetchTimeout == 0 {
		o.fetchTimeout = 2 * time.Second
	}
	if o.memoryWait == 0 {
		o.memoryWait = 10 * time.Second
	}
	logs := &syncbuffer.Buffer{}
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	engine, err := ocr.New(ocr.Config{DefaultLang: "eng", Workers: o.workers, QueueSize: o.queue, QueueTimeout: o.queueTimeout,
		PageMemory: o.pageMemory, Logger: log, PDFiumCache: testsupport.PDFiumCache(t), TessdataDir: o.tessdata, LangpackDir: o.langpacks})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	fetcher := fetch.New(fetch.Config{ConnectTimeout: time.Second, Timeout: o.fetchTimeout, MaxBytes: o.maxImageBytes,
		MaxRedirects: 3, AllowPrivate: o.allowPrivate, UserAgent: "test"})
	if o.writeTimeout == 0 {
		o.writeTimeout = 10 * time.Second
	}
	cfg := Config{MaxImageBytes: o.maxImageBytes, RequestTimeout: o.requestTimeout, WriteTimeout: o.writeTimeout, MemoryWait: o.memoryWait}
	if o.requestMemory == 0 {
		o.requestMemory = 8 * cfg.MaxRequestBytes()
	}
	budget := membudget.New(o.requestMemory, o.memoryWait)
	if o.maxPages == 0 {
		o.maxPages = 100
	}
	pipe := pipeline.New(pipeline.Config{MaxPixels: 40_000_000, MaxPages: o.maxPages}, engine, fetcher)
	srv := NewServer(cfg, log, engine, pipe, budget, "test", prometheus.NewRegistry())
	if o.tracing {
		srv.EnableTracing()
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener = Listener(ts.Listener)
	ts.Start()
	admin := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(func() {
		ts.Close()
		admin.Close()
		engine.Close(context.Background())
	})

	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: ts.URL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, ts: ts, admin: admin, logs: logs, router: router, doc: doc, budget: budget, pipe: pipe, fetcher: fetcher}
	if o.jobs != nil {
		h.jobCfg = *o.jobs
		if h.jobCfg.DataDir == "" {
			h.jobCfg.DataDir = t.TempDir()
		}
		h.openJobs(false)
		t.Cleanup(h.closeJobs)
	}
	if o.keys != "" {
		h.turnKeysOn(o.keys)
	}
	if o.jobs != nil && !o.noRunner {
		h.startRunner()
	}
	return h
}

// openJobs opens the jobs broker (embedded, or jobCfg.NATSURL) and, if run, starts a runner.
func (h *harness) openJobs(run bool) {
	h.t.Helper()
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := jobs.Open(context.Background(), h.jobCfg, log)
	if err != nil {
		h.t.Fatal(err)
	}
	h.broker = b
	h.srv.SetJobs(jobs.New(b, h.pipe))
	if run {
		h.startRunner()
	}
}

// startRunner starts taking the queued jobs.
func (h *harness) startRunner() {
	h.t.Helper()
	h.runner = jobs.NewRunner(h.broker, h.pipe, h.budget, h.fetcher)
	h.runner.Record(h.srv.Work())
	if h.limits != nil {
		h.runner.CountPages(h.limits)
	}
	if err := h.runner.Start(); err != nil {
		h.t.Fatal(err)
	}
}

// closeJobs stops the runner (running jobs go back to the queue) and closes the broker, as a
// process that stops does.
func (h *harness) closeJobs() {
	if h.runner != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		h.runner.Stop(ctx)
		cancel()
		h.runner = nil
	}
	if h.broker != nil {
		h.broker.Close()
		h.broker = nil
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// do sends req and validates the response against the OpenAPI document: status, headers and
// body schema for documented routes, the Error schema for everything else.
func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, body: body}

	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "html") && resp.StatusCode != http.StatusOK {
		h.t.Errorf("%s %s answered %s", req.Method, req.URL.Path, ct)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		h.t.Errorf("%s %s: no X-Request-Id", req.Method, req.URL.Path)
	}
	route, params, err := h.router.FindRoute(req)
	if err != nil {
		// Undocumented path or method: must still be a documented JSON error.
		h.validateSchema("Error", body)
		return out
	}
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true},
	})
	if err != nil {
		h.t.Errorf("%s %s -> %d violates the contract: %v\nbody: %.300s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return out
}

func (h *harness) validateSchema(name string, body []byte) {
	h.t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		h.t.Errorf("not JSON: %q", body)
		return
	}
	if err := h.doc.Components.Schemas[name].Value.VisitJSON(v); err != nil {
		h.t.Errorf("body does not match %s: %v: %s", name, err, body)
	}
}

func (h *harness) get(path string) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
	return h.do(req)
}

// postJSON sends body (a string is sent as is, anything else is marshalled).
func (h *harness) postJSON(body any) response {
	h.t.Helper()
	var b []byte
	if s, ok := body.(string); ok {
		b = []byte(s)
	} else {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return h.do(req)
}

func (h *harness) postMultipart(fields map[string]string, filename string, image []byte) response {
	h.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if image != nil {
		fw, _ := mw.CreateFormFile("image", filename)
		fw.Write(image)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return h.do(req)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// fileServer serves the given bodies on a loopback httptest server.
func fileServer(t *testing.T, files map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
			return
		}
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// adminGet fetches path from the admin port.
func adminGet(t *testing.T, h *harness, path string) string {
	t.Helper()
	resp, err := http.Get(h.admin.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("admin %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}
