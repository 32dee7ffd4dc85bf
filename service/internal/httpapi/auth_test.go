package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/apikey"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/ratelimit"
)

// API keys, end to end on the real server: every answer held against the contract.

// turnKeysOn writes the key file and turns keys on, with limits over the jobs broker's KV
// when jobs are on (shared state, as in production), else in the process.
func (h *harness) turnKeysOn(file string) {
	h.t.Helper()
	h.keyFile = filepath.Join(h.t.TempDir(), "keys.yaml")
	h.writeKeys(file)
	kr, err := apikey.Load(h.keyFile, h.srv.log)
	if err != nil {
		h.t.Fatal(err)
	}
	var kv ratelimit.KeyValue
	if h.broker != nil {
		if kv, err = h.broker.KeyValue(context.Background(), "readocr_limits"); err != nil {
			h.t.Fatal(err)
		}
	}
	h.keyring, h.limits = kr, ratelimit.New(kv, h.srv.log)
	h.srv.SetAuth(kr, h.limits)
}

// writeKeys replaces the key file as Kubernetes replaces a mounted Secret (atomically).
func (h *harness) writeKeys(file string) {
	h.t.Helper()
	tmp := h.keyFile + ".new"
	if err := os.WriteFile(tmp, []byte(file), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.keyFile); err != nil {
		h.t.Fatal(err)
	}
}

// testKey is a key made as `readocr key new` makes one.
type testKey struct {
	secret string
	line   string
}

func newKey(t *testing.T, id string, scopes []apikey.Scope, p ratelimit.Policy) testKey {
	t.Helper()
	secret, k, err := apikey.New(id, scopes, p)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{secret, k.Line()}
}

func keyFile(keys ...testKey) string {
	s := "keys:\n"
	for _, k := range keys {
		s += "  " + k.line + "\n"
	}
	return s
}

// with sends req with the key in Authorization (or X-API-Key) and checks the contract.
func (h *harness) with(k testKey, req *http.Request) response {
	h.t.Helper()
	if k.secret != "" {
		req.Header.Set("Authorization", "Bearer "+k.secret)
	}
	return h.do(req)
}

func (h *harness) getWith(k testKey, path string) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
	return h.with(k, req)
}

func (h *harness) postWith(k testKey, path string, body map[string]any, header ...string) response {
	h.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return h.with(k, req)
}

// Keys off (make run, the minikube manifests): everything is served without a key, as
// before, and the service says it is open.
func TestKeysOffSaysSo(t *testing.T) {
	h := newHarness(t, options{workers: 1})
	if r := h.get("/"); r.status != 200 || r.json(t)["auth"] != "none" {
		t.Errorf("index: %d %s", r.status, r.body)
	}
	if r := h.get("/readyz"); r.status != 200 || r.json(t)["auth"] != "none" {
		t.Errorf("readyz: %d %s", r.status, r.body)
	}
	if r := h.postJSON(map[string]any{"image": b64(testimages.Get(t, "gos_001-helloworld.png").Bytes)}); r.status != 200 {
		t.Errorf("read_ocr without a key: %d %s", r.status, r.body)
	}
}

// Missing, unknown and revoked keys: 401; a key without the route's scope: 403; the probes
// need none; the key's id, never the key, in the log and the metrics.
func TestAuthentication(t *testing.T) {
	ocrKey := newKey(t, "team-ocr", []apikey.Scope{apikey.ScopeOCR}, ratelimit.Policy{})
	jobsKey := newKey(t, "team-jobs", []apikey.Scope{apikey.ScopeJobs}, ratelimit.Policy{})
	admin := newKey(t, "ops", []apikey.Scope{apikey.ScopeAdmin}, ratelimit.Policy{})
	h := newHarness(t, options{workers: 1, jobs: jobsConfig(), keys: keyFile(ocrKey, jobsKey, admin)})
	photo := b64(testimages.Get(t, "gos_001-helloworld.png").Bytes)
	var none testKey
	unknown := testKey{secret: apikey.Prefix + strings.Repeat("A", 43)}

	for _, path := range []string{"/healthz", "/readyz"} {
		if r := h.get(path); r.status != 200 {
			t.Errorf("probe %s without a key: %d", path, r.status)
		}
	}
	if r := h.get("/readyz"); r.json(t)["auth"] != "api_keys" {
		t.Errorf("readyz: %s", r.body)
	}
	// The web page and its files need no key (a person types it into the page); the JSON
	// index at the same path does.
	page, _ := http.NewRequest("GET", h.ts.URL+"/", nil)
	page.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if r := h.with(testKey{}, page); r.status != 200 || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("the page without a key: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if r := h.get("/ui/app.js"); r.status != 200 {
		t.Errorf("the page's script without a key: %d", r.status)
	}
	for _, c := range []struct {
		method, path string
		key          testKey
		status       int
		code         string
	}{
		{"GET", "/", none, 401, "unauthorized"},
		{"GET", "/languages", none, 401, "unauthorized"},
		{"GET", "/openapi.yaml", none, 401, "unauthorized"},
		{"GET", "/openapi.json", unknown, 401, "unauthorized"},
		{"POST", "/read_ocr", none, 401, "unauthorized"},
		{"POST", "/read_ocr", unknown, 401, "unauthorized"},
		{"POST", "/jobs", none, 401, "unauthorized"},
		{"GET", "/jobs/NOSUCHJOB", none, 401, "unauthorized"},
		{"GET", "/jobs/NOSUCHJOB/result", unknown, 401, "unauthorized"},
		{"DELETE", "/jobs/NOSUCHJOB", none, 401, "unauthorized"},
		{"POST", "/read_ocr", jobsKey, 403, "forbidden"},
		{"POST", "/jobs", ocrKey, 403, "forbidden"},
		{"GET", "/jobs/NOSUCHJOB", ocrKey, 403, "forbidden"},
		{"GET", "/jobs/NOSUCHJOB", jobsKey, 404, "not_found"},
		{"GET", "/", ocrKey, 200, ""},
		{"GET", "/languages", jobsKey, 200, ""},
		{"POST", "/read_ocr", ocrKey, 200, ""},
		{"POST", "/read_ocr", admin, 200, ""},
		{"POST", "/jobs", jobsKey, 202, ""},
		{"POST", "/jobs", admin, 202, ""},
	} {
		var body *bytes.Reader
		if c.method == "POST" {
			b, _ := json.Marshal(map[string]any{"image": photo})
			body = bytes.NewReader(b)
		} else {
			body = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(c.method, h.ts.URL+c.path, body)
		r := h.with(c.key, req)
		if r.status != c.status || (c.code != "" && r.errorCode(t) != c.code) {
			t.Errorf("%s %s with %q: %d %s, want %d %s", c.method, c.path, c.key.secret, r.status, r.body, c.status, c.code)
		}
		if r.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s: 401 without WWW-Authenticate", c.method, c.path)
		}
	}
	// X-API-Key works as well as Authorization; another scheme is not a key.
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/languages", nil)
	req.Header.Set("X-API-Key", ocrKey.secret)
	if r := h.do(req); r.status != 200 {
		t.Errorf("X-API-Key: %d %s", r.status, r.body)
	}
	req, _ = http.NewRequest(http.MethodGet, h.ts.URL+"/languages", nil)
	req.Header.Set("Authorization", "Basic "+ocrKey.secret)
	if r := h.do(req); r.status != 401 {
		t.Errorf("Authorization: Basic: %d %s", r.status, r.body)
	}

	// Revoked: its line removed from the file, refused at the next read of the file.
	h.writeKeys(keyFile(jobsKey, admin))
	h.keyring.Reload()
	if r := h.postWith(ocrKey, "/read_ocr", map[string]any{"image": photo}); r.status != 401 || r.errorCode(t) != "unauthorized" {
		t.Errorf("a revoked key: %d %s", r.status, r.body)
	}
	if r := h.getWith(admin, "/"); r.status != 200 || r.json(t)["auth"] != "api_keys" {
		t.Errorf("the keys left: %d %s", r.status, r.body)
	}

	logs := h.logs.String()
	for _, k := range []testKey{ocrKey, jobsKey, admin, unknown} {
		if strings.Contains(logs, k.secret) {
			t.Fatalf("a key is in the log")
		}
	}
	if !strings.Contains(logs, `"key":"team-ocr"`) {
		t.Error("the key's id is not in the access log")
	}
	m := adminGet(t, h, "/metrics")
	for _, want := range []string{`readocr_key_requests_total{key="team-ocr"}`, `readocr_auth_failures_total{reason="missing"}`,
		`readocr_auth_failures_total{reason="unknown"}`, `readocr_auth_failures_total{reason="scope"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, ocrKey.secret) {
		t.Error("a key is in the metrics")
	}
}

// A key over its rate: 429 rate_limited, Retry-After and the RateLimit fields; every answer of
// a limited key carries them.
func TestRateLimit(t *testing.T) {
	k := newKey(t, "slow", []apikey.Scope{apikey.ScopeOCR}, ratelimit.Policy{Rate: 0.5, Burst: 2})
	other := newKey(t, "other", []apikey.Scope{apikey.ScopeOCR}, ratelimit.Policy{})
	h := newHarness(t, options{workers: 1, jobs: jobsConfig(), keys: keyFile(k, other)})
	for i := range 2 {
		r := h.getWith(k, "/languages")
		if r.status != 200 || r.header.Get("RateLimit-Policy") != `"rate";q=2;w=4` ||
			r.header.Get("RateLimit") != `"rate";r=`+strconv.Itoa(1-i)+`;t=2` {
			t.Fatalf("request %d: %d %v", i+1, r.status, r.header)
		}
	}
	r := h.getWith(k, "/languages")
	if r.status != 429 || r.errorCode(t) != "rate_limited" || r.header.Get("Retry-After") != "2" ||
		r.header.Get("RateLimit") != `"rate";r=0;t=2` {
		t.Fatalf("over the rate: %d %s %v", r.status, r.body, r.header)
	}
	if r := h.getWith(other, "/languages"); r.status != 200 || r.header.Get("RateLimit") != "" {
		t.Errorf("a key without limits: %d %v", r.status, r.header)
	}
	if !strings.Contains(adminGet(t, h, "/metrics"), `readocr_rate_limited_total{key="slow",policy="rate"} 1`) {
		t.Error("no rate_limited metric")
	}
}

// A page quota: checked before a request, counted after it (a 3-page TIFF counts 3, by
// /read_ocr or as a job; /read_ocr's answer says what is left after it, a job's 202 what is
// left before it runs); once used up, 429 quota_exceeded until the next UTC day.
func TestPageQuota(t *testing.T) {
	k := newKey(t, "quota", []apikey.Scope{apikey.ScopeOCR, apikey.ScopeJobs}, ratelimit.Policy{Pages: 5})
	h := newHarness(t, options{workers: 1, jobs: jobsConfig(), keys: keyFile(k)})
	hello, err := testdocs.Decode(testimages.Get(t, "gos_001-helloworld.png").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tiff := b64(testdocs.TIFF([]image.Image{hello, hello, hello}, 300))
	r := h.postWith(k, "/read_ocr", map[string]any{"image": tiff})
	reset, _ := strconv.ParseInt(r.header.Get("RateLimit")[strings.LastIndex(r.header.Get("RateLimit"), "=")+1:], 10, 64)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("RateLimit"), `"pages";r=2;t=`) ||
		reset-ratelimit.Seconds(untilMidnight()) > 5 || reset-ratelimit.Seconds(untilMidnight()) < -5 {
		t.Fatalf("first document: %d %v (the UTC day ends in %v)", r.status, r.header, untilMidnight())
	}
	r = h.postWith(k, "/jobs", map[string]any{"image": tiff})
	if r.status != 202 || !strings.HasPrefix(r.header.Get("RateLimit"), `"pages";r=2;`) {
		t.Fatalf("a job with 2 pages left: %d %s %v", r.status, r.body, r.header)
	}
	var j jobs.Job
	decodeJSON(t, r.body, &j)
	waitFor(t, func() bool { return h.jobWith(k, j.ID).Status == jobs.Succeeded }, "the job done")
	waitFor(t, func() bool {
		return !h.limits.Pages(context.Background(), "quota", ratelimit.Policy{Pages: 5, Period: 24 * time.Hour}).Allowed
	}, "the job's pages counted")
	r = h.postWith(k, "/read_ocr", map[string]any{"image": tiff})
	retry, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if r.errorCode(t) != "quota_exceeded" || retry < 1 || retry > 86400 || !strings.HasPrefix(r.header.Get("RateLimit"), `"pages";r=0;`) {
		t.Fatalf("over the quota: %d %s %v", r.status, r.body, r.header)
	}
}

func untilMidnight() time.Duration {
	now := time.Now().UTC()
	return now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now)
}

func (h *harness) jobWith(k testKey, id string) jobs.Job {
	h.t.Helper()
	r := h.getWith(k, "/jobs/"+id)
	var j jobs.Job
	decodeJSON(h.t, r.body, &j)
	return j
}

// A job belongs to the key that made it: another key gets 404 for its status, result and
// delete (as for a job that does not exist); an admin key sees it; idempotency keys are per
// key.
func TestJobOwnership(t *testing.T) {
	a := newKey(t, "team-a", []apikey.Scope{apikey.ScopeJobs}, ratelimit.Policy{})
	b := newKey(t, "team-b", []apikey.Scope{apikey.ScopeJobs}, ratelimit.Policy{})
	admin := newKey(t, "ops", []apikey.Scope{apikey.ScopeAdmin}, ratelimit.Policy{})
	h := newHarness(t, options{workers: 1, jobs: jobsConfig(), keys: keyFile(a, b, admin)})
	photo := b64(testimages.Get(t, "gos_001-helloworld.png").Bytes)
	r := h.postWith(a, "/jobs", map[string]any{"image": photo}, "Idempotency-Key", `"order-17"`)
	var j jobs.Job
	decodeJSON(t, r.body, &j)
	waitFor(t, func() bool { return h.jobWith(a, j.ID).Status == jobs.Succeeded }, "the job done")

	for _, path := range []string{"/jobs/" + j.ID, "/jobs/" + j.ID + "/result", "/jobs/" + j.ID + "/events"} {
		if r := h.getWith(b, path); r.status != 404 || r.errorCode(t) != "not_found" {
			t.Errorf("GET %s by another key: %d %s", path, r.status, r.body)
		}
		if r := h.getWith(admin, path); r.status != 200 {
			t.Errorf("GET %s by an admin key: %d %s", path, r.status, r.body)
		}
		if r := h.getWith(a, path); r.status != 200 {
			t.Errorf("GET %s by its key: %d %s", path, r.status, r.body)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, h.ts.URL+"/jobs/"+j.ID, nil)
	if r := h.with(b, req); r.status != 404 {
		t.Errorf("DELETE by another key: %d %s", r.status, r.body)
	}
	if r := h.getWith(a, "/jobs/"+j.ID); r.status != 200 {
		t.Fatalf("another key's DELETE deleted it: %d", r.status)
	}
	// The same idempotency key from another client is its own.
	r = h.postWith(b, "/jobs", map[string]any{"image": photo}, "Idempotency-Key", `"order-17"`)
	var jb jobs.Job
	decodeJSON(t, r.body, &jb)
	if r.status != 202 || jb.ID == j.ID {
		t.Errorf("team-b's order-17: %d, job %s (team-a's is %s)", r.status, jb.ID, j.ID)
	}
	req, _ = http.NewRequest(http.MethodDelete, h.ts.URL+"/jobs/"+j.ID, nil)
	if r := h.with(a, req); r.status != 204 {
		t.Errorf("DELETE by its key: %d %s", r.status, r.body)
	}
}

// The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header): a retry of the same
// request gets the same job, whether sent as JSON or multipart, by header or field; the same key
// with another image is 422, never the first job's text; malformed keys are 400.
func TestIdempotencyKeyHeader(t *testing.T) {
	h := newHarness(t, options{workers: 1, jobs: jobsConfig(), noRunner: true})
	photo := testimages.Get(t, "phototest.tif").Bytes
	hello := testimages.Get(t, "gos_001-helloworld.png").Bytes
	var none testKey
	first := h.postWith(none, "/jobs", map[string]any{"image": b64(photo)}, "Idempotency-Key", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`)
	var j jobs.Job
	decodeJSON(t, first.body, &j)
	if first.status != 202 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	same := []response{
		h.postWith(none, "/jobs", map[string]any{"image": b64(photo)}, "Idempotency-Key", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`),
		h.postWith(none, "/jobs", map[string]any{"image": b64(photo)}, "Idempotency-Key", `8e03978e-40d5-43e8-bc93-6894a57f9324`),
		h.postWith(none, "/jobs", map[string]any{"image": b64(photo), "idempotency_key": "8e03978e-40d5-43e8-bc93-6894a57f9324"}),
		h.postMultipartJob(map[string]string{"idempotency_key": "8e03978e-40d5-43e8-bc93-6894a57f9324"}, photo),
	}
	for i, r := range same {
		var again jobs.Job
		decodeJSON(t, r.body, &again)
		if r.status != 202 || again.ID != j.ID {
			t.Errorf("retry %d: %d, job %s, want %s", i+1, r.status, again.ID, j.ID)
		}
	}
	for _, c := range []struct {
		name   string
		body   map[string]any
		header string
		status int
		code   string
	}{
		{"another image", map[string]any{"image": b64(hello)}, `"8e03978e-40d5-43e8-bc93-6894a57f9324"`, 422, "idempotency_key_reused"},
		{"another option", map[string]any{"image": b64(photo), "format": "hocr"}, `"8e03978e-40d5-43e8-bc93-6894a57f9324"`, 422, "idempotency_key_reused"},
		{"header and field differ", map[string]any{"image": b64(photo), "idempotency_key": "a"}, `"b"`, 400, "bad_request"},
		{"an unterminated string", map[string]any{"image": b64(photo)}, `"order-17`, 400, "bad_request"},
		{"a bad escape", map[string]any{"image": b64(photo)}, `"order\x"`, 400, "bad_request"},
		{"an empty string", map[string]any{"image": b64(photo)}, `""`, 400, "bad_request"},
		{"too long", map[string]any{"image": b64(photo)}, `"` + strings.Repeat("k", 201) + `"`, 400, "bad_request"},
		{"a control character in the field", map[string]any{"image": b64(photo), "idempotency_key": "team-a\x00order"}, "", 400, "bad_request"},
	} {
		r := h.postWith(none, "/jobs", c.body, "Idempotency-Key", c.header)
		if r.status != c.status || r.errorCode(t) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
}

func (h *harness) postMultipartJob(fields map[string]string, image []byte) response {
	h.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("image", "page.tif")
	fw.Write(image)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/jobs", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return h.do(req)
}
