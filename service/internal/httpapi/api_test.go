package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

func TestMetaEndpoints(t *testing.T) {
	h := newHarness(t, options{})
	if r := h.get("/"); r.status != 200 || r.json(t)["API Documentation"] != "/openapi.yaml" {
		t.Errorf("GET / = %d %s", r.status, r.body)
	}
	if r := h.get("/healthz"); r.status != 200 {
		t.Errorf("healthz %d", r.status)
	}
	if r := h.get("/readyz"); r.status != 200 {
		t.Errorf("readyz %d %s", r.status, r.body)
	}
	r := h.get("/languages")
	if langs, _ := r.json(t)["languages"].([]any); r.status != 200 || len(langs) == 0 {
		t.Errorf("languages %d %s", r.status, r.body)
	}
	if r := h.get("/openapi.yaml"); r.status != 200 || !strings.Contains(string(r.body), "/read_ocr") {
		t.Errorf("openapi.yaml %d", r.status)
	}
	if r := h.get("/openapi.json"); r.status != 200 || r.json(t)["paths"] == nil {
		t.Errorf("openapi.json %d %.100s", r.status, r.body)
	}
	h.postJSON(map[string]string{"image": b64(testimages.Get(t, "tjs_simple.pbm").Bytes)})
	// Metrics and the profiler are on the admin port only.
	if r := h.get("/metrics"); r.status != 404 {
		t.Errorf("/metrics on the API port: %d", r.status)
	}
	m := adminGet(t, h, "/metrics")
	for _, want := range []string{`readocr_http_requests_total{route="/read_ocr",status="200"} 1`, "readocr_workers 2",
		"readocr_c_heap_bytes", "readocr_worker_resident_bytes", "readocr_request_memory_limit_bytes", "readocr_ready 1", "go_goroutines"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if p := adminGet(t, h, "/debug/pprof/"); !strings.Contains(p, "goroutine") {
		t.Errorf("pprof index: %.200s", p)
	}
	if r := h.get("/nope"); r.status != 404 || r.errorCode(t) != "not_found" {
		t.Errorf("unknown route %d %s", r.status, r.body)
	}
	if r := h.get("/read_ocr"); r.status != 405 || r.errorCode(t) != "method_not_allowed" {
		t.Errorf("GET /read_ocr %d %s", r.status, r.body)
	}
}

// Each format, sent as base64 JSON (the original service's URL form is tested below), reads
// as its ground truth.
func TestReadOCREveryFormatBase64(t *testing.T) {
	h := newHarness(t, options{})
	for _, img := range testimages.All(t, "images/") {
		r := h.postJSON(map[string]string{"image": b64(img.Bytes), "lang": "eng"})
		if r.status != 200 {
			t.Errorf("%s: %d %s", img.Name, r.status, r.body)
			continue
		}
		text, _ := r.json(t)["text"].(string)
		if acc := testimages.Accuracy(text, img.Expected); acc < 0.95 {
			t.Errorf("%s: accuracy %.3f: %q", img.Name, acc, text)
		}
	}
}

func TestReadOCRInputKinds(t *testing.T) {
	h := newHarness(t, options{allowPrivate: true})
	img := testimages.Get(t, "phototest.tif")
	files := fileServer(t, map[string][]byte{"/page.tif": img.Bytes})
	want := testimages.Normalize(img.Expected)

	check := func(kind string, r response) {
		t.Helper()
		if r.status != 200 {
			t.Errorf("%s: %d %s", kind, r.status, r.body)
			return
		}
		if got, _ := r.json(t)["text"].(string); testimages.Normalize(got) != want {
			t.Errorf("%s: %q", kind, got)
		}
	}
	// The original contract, byte for byte: URL + lang + config.
	r := h.postJSON(map[string]string{"image": files.URL + "/page.tif", "lang": "eng", "config": ""})
	check("url", r)
	if !strings.HasPrefix(string(r.body), `{"text":"This is a lot`) || len(r.json(t)) != 1 {
		t.Errorf("default answer is not exactly {\"text\": ...}: %s", r.body)
	}
	check("base64", h.postJSON(map[string]string{"image": b64(img.Bytes)}))
	check("base64 wrapped", h.postJSON(map[string]string{"image": wrap76(b64(img.Bytes))}))
	check("base64 url alphabet", h.postJSON(map[string]string{"image": strings.NewReplacer("+", "-", "/", "_").Replace(b64(img.Bytes))}))
	check("data uri", h.postJSON(map[string]string{"image": "data:image/tiff;base64," + b64(img.Bytes)}))
	check("multipart", h.postMultipart(map[string]string{"lang": "eng", "config": "--psm 3"}, "page.tif", img.Bytes))
	check("no lang (default eng)", h.postJSON(map[string]string{"image": b64(img.Bytes), "config": ""}))
	check("unknown fields ignored", h.postJSON(`{"image": "`+b64(img.Bytes)+`", "extra": [1,2]}`))

	// curl -d '{...}' without -H sends a form content type.
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", strings.NewReader(`{"image":"`+b64(img.Bytes)+`"}`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	check("json labelled as form", h.do(req))
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	return b.String() + s
}

func TestReadOCRLayout(t *testing.T) {
	h := newHarness(t, options{})
	img := testimages.Get(t, "phototest.tif")
	for _, r := range []response{
		h.postJSON(map[string]any{"image": b64(img.Bytes), "layout": true}),
		h.postMultipart(map[string]string{"layout": "true"}, "p.tif", img.Bytes),
	} {
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var body struct {
			Text       string
			Confidence float64
			Lines      []struct{ Text string }
			Words      []struct {
				Text string
				BBox struct{ X0, Y0, X1, Y1 int }
			}
		}
		json.Unmarshal(r.body, &body)
		if len(body.Lines) != 8 || len(body.Words) != 60 || body.Confidence < 80 || body.Lines[0].Text != "This is a lot of 12 point text to test the" {
			t.Errorf("layout: %d lines, %d words, confidence %.1f, first line %+v", len(body.Lines), len(body.Words), body.Confidence, body.Lines)
		}
		if w := body.Words[0]; w.Text != "This" || w.BBox.X1 <= w.BBox.X0 || w.BBox.Y1 <= w.BBox.Y0 {
			t.Errorf("first word %+v", w)
		}
	}
}

// A phone photo stored sideways with EXIF orientation 6 reads upright.
func TestReadOCRAppliesEXIFOrientation(t *testing.T) {
	h := newHarness(t, options{})
	img := testimages.Get(t, "pyt_test.jpg")
	r := h.postJSON(map[string]string{"image": b64(testimages.SidewaysPhoto(t, img))})
	text, _ := r.json(t)["text"].(string)
	if acc := testimages.Accuracy(text, img.Expected); r.status != 200 || acc < 0.97 {
		t.Fatalf("%d, accuracy %.3f: %q", r.status, acc, text)
	}
}

// Every kind of bad input gets its documented status and code, as JSON.
func TestReadOCRBadInputs(t *testing.T) {
	h := newHarness(t, options{maxImageBytes: 1 << 20, fetchTimeout: 500 * time.Millisecond, allowPrivate: true})
	files := fileServer(t, map[string][]byte{
		"/page.html": []byte("<html><body>not an image</body></html>"),
		"/huge.png":  make([]byte, 2<<20),
		"/doc.pdf":   []byte("%PDF-1.7\n%...."),
	})
	good := b64(testimages.Get(t, "tjs_simple.pbm").Bytes)
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"not json", `{"image": `, 400, "bad_request"},
		{"json array", `[]`, 400, "bad_request"},
		{"image not a string", `{"image": 5}`, 400, "bad_request"},
		{"no image", `{}`, 400, "bad_request"},
		{"empty image", `{"image": ""}`, 400, "bad_request"},
		{"null image", `{"image": null}`, 400, "bad_request"},
		{"trailing data", `{"image": "` + good + `"} {}`, 400, "bad_request"},
		{"lang not a string", `{"image": "` + good + `", "lang": 1}`, 400, "bad_request"},
		{"not base64", map[string]string{"image": "not base64 at all!"}, 400, "invalid_image_field"},
		{"base64 of nothing", map[string]string{"image": "===="}, 400, "invalid_image_field"},
		{"data uri not base64", map[string]string{"image": "data:image/png,rawbytes"}, 400, "invalid_image_field"},
		{"ftp url", map[string]string{"image": "ftp://example.com/a.png"}, 400, "unsupported_url_scheme"},
		{"file url", map[string]string{"image": "file:///etc/passwd"}, 400, "unsupported_url_scheme"},
		{"url without host", map[string]string{"image": "http:///a.png"}, 400, "invalid_image_field"},
		{"text file", map[string]string{"image": b64(testimages.Get(t, "not_an_image.png").Bytes)}, 415, "unsupported_media_type"},
		{"broken pdf", map[string]string{"image": b64([]byte("%PDF-1.4\n1 0 obj"))}, 422, "undecodable_document"},
		{"truncated png", map[string]string{"image": b64(testimages.Get(t, "truncated.png").Bytes)}, 422, "undecodable_image"},
		{"truncated webp", map[string]string{"image": b64(testimages.Get(t, "truncated.webp").Bytes)}, 422, "undecodable_image"},
		{"header only png", map[string]string{"image": b64([]byte("\x89PNG\r\n\x1a\n"))}, 422, "undecodable_image"},
		{"400 Mpx png bomb", map[string]string{"image": b64(testimages.PNGBomb(t, 20000, 20000))}, 413, "image_too_large"},
		{"body over the limit", map[string]string{"image": b64(make([]byte, 2<<20))}, 413, "payload_too_large"},
		{"unknown language", map[string]string{"image": good, "lang": "klingon"}, 422, "unknown_language"},
		{"bad language list", map[string]string{"image": good, "lang": "eng deu"}, 400, "invalid_lang"},
		{"path in language", map[string]string{"image": good, "lang": "../../../etc/passwd"}, 400, "invalid_lang"},
		{"bad psm", map[string]string{"image": good, "config": "--psm 99"}, 400, "invalid_config"},
		{"bad quoting", map[string]string{"image": good, "config": `-c "tessedit_char_whitelist=1`}, 400, "invalid_config"},
		{"tessdata dir", map[string]string{"image": good, "config": "--tessdata-dir /tmp"}, 400, "unsupported_config"},
		{"debug file variable", map[string]string{"image": good, "config": "-c debug_file=/tmp/x"}, 400, "unsupported_config"},
		{"legacy engine", map[string]string{"image": good, "config": "--oem 0"}, 400, "unsupported_config"},
		{"url 404", map[string]string{"image": files.URL + "/missing.png"}, 502, "fetch_failed"},
		{"url connection refused", map[string]string{"image": "http://127.0.0.1:1/a.png"}, 502, "fetch_failed"},
		{"url slow", map[string]string{"image": files.URL + "/slow"}, 504, "fetch_timeout"},
		{"url html", map[string]string{"image": files.URL + "/page.html"}, 415, "unsupported_media_type"},
		{"url broken pdf", map[string]string{"image": files.URL + "/doc.pdf"}, 422, "undecodable_document"},
		{"url too big", map[string]string{"image": files.URL + "/huge.png"}, 413, "payload_too_large"},
	}
	for _, tt := range tests {
		r := h.postJSON(tt.body)
		if r.status != tt.status || r.errorCode(t) != tt.code {
			t.Errorf("%s: got %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}

	// Other encodings.
	if r := h.postMultipart(map[string]string{"lang": "eng"}, "", nil); r.status != 400 || r.errorCode(t) != "bad_request" {
		t.Errorf("multipart without image: %d %s", r.status, r.body)
	}
	if r := h.postMultipart(nil, "big.png", make([]byte, 2<<20)); r.status != 413 || r.errorCode(t) != "payload_too_large" {
		t.Errorf("multipart too big: %d %s", r.status, r.body)
	}
	if r := h.postMultipart(map[string]string{"layout": "perhaps"}, "a.pbm", testimages.Get(t, "tjs_simple.pbm").Bytes); r.status != 400 {
		t.Errorf("multipart bad layout: %d %s", r.status, r.body)
	}
	for _, ct := range []string{"application/xml", "image/png", "multipart/form-data", "text/plain; charset=\"unterminated"} {
		req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", strings.NewReader("<x/>"))
		req.Header.Set("Content-Type", ct)
		if r := h.do(req); r.status != 415 && r.status != 400 {
			t.Errorf("Content-Type %s: %d %s", ct, r.status, r.body)
		}
	}
	// The server is still healthy after all that.
	if r := h.postJSON(map[string]string{"image": good}); r.status != 200 {
		t.Errorf("after bad inputs: %d %s", r.status, r.body)
	}
}

// Without the explicit setting, URLs that point inside the network are refused before any
// byte is sent to them.
func TestReadOCRRefusesSSRF(t *testing.T) {
	h := newHarness(t, options{})
	hits := 0
	var mu sync.Mutex
	inside := fileServer(t, nil)
	inside.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	})
	port := inside.URL[strings.LastIndex(inside.URL, ":"):]
	for _, u := range []string{
		inside.URL + "/a.png?token=SECRET", "http://localhost" + port + "/a.png", "http://[::1]" + port + "/",
		"http://169.254.169.254/latest/meta-data/iam/", "http://10.0.0.1/a.png", "http://192.168.0.1/",
		"http://100.64.0.1/", "http://0.0.0.0" + port + "/", "http://[::ffff:127.0.0.1]" + port + "/",
	} {
		r := h.postJSON(map[string]string{"image": u})
		if r.status != 400 || r.errorCode(t) != "url_not_allowed" {
			t.Errorf("%s: %d %s", u, r.status, r.body)
		}
	}
	if hits != 0 {
		t.Errorf("the internal server was reached %d times", hits)
	}
	if strings.Contains(h.logs.String(), "SECRET") {
		t.Error("a URL query string reached the logs")
	}
}

func TestAccessLogAndRequestID(t *testing.T) {
	h := newHarness(t, options{})
	img := testimages.Get(t, "tjs_simple.pbm").Bytes
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/read_ocr", strings.NewReader(`{"image":"`+b64(img)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "trace-abc-123")
	r := h.do(req)
	if r.status != 200 || r.header.Get("X-Request-Id") != "trace-abc-123" {
		t.Fatalf("%d, X-Request-Id %q", r.status, r.header.Get("X-Request-Id"))
	}
	bad := h.postJSON(map[string]string{"image": "???"})
	if id, _ := bad.json(t)["request_id"].(string); id == "" || id != bad.header.Get("X-Request-Id") {
		t.Errorf("error body request_id %q, header %q", id, bad.header.Get("X-Request-Id"))
	}

	var found bool
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if !strings.Contains(line, `"request_id":"trace-abc-123"`) {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] != "request" {
			continue
		}
		found = true
		for k, v := range map[string]any{"status": 200.0, "source": "base64", "lang": "eng", "format": "pnm", "size": "320x180", "path": "/read_ocr"} {
			if rec[k] != v {
				t.Errorf("access log %s = %v, want %v", k, rec[k], v)
			}
		}
		if _, ok := rec["duration_ms"].(float64); !ok {
			t.Errorf("access log lacks duration_ms: %v", rec)
		}
	}
	if !found {
		t.Fatalf("no access line for the request in %s", h.logs.String())
	}
	if strings.Contains(h.logs.String(), b64(img)[:40]) {
		t.Error("image bytes reached the logs")
	}
}

// Past the queue, requests are refused at once with 429 + Retry-After; queued requests that
// wait too long get 503 + Retry-After.
func TestSaturation(t *testing.T) {
	img := b64(testimages.Get(t, "eurotext.tif").Bytes)
	for _, tt := range []struct {
		name   string
		opts   options
		status int
		code   string
	}{
		{"queue full", options{workers: 1, queue: 0}, 429, "queue_full"},
		{"queue timeout", options{workers: 1, queue: 8, queueTimeout: time.Millisecond}, 503, "queue_timeout"},
	} {
		h := newHarness(t, tt.opts)
		var wg sync.WaitGroup
		results := make(chan response, 6)
		for range 6 {
			wg.Go(func() { results <- h.postJSON(map[string]string{"image": img}) })
		}
		wg.Wait()
		close(results)
		counts := map[int]int{}
		for r := range results {
			counts[r.status]++
			if r.status == tt.status && (r.errorCode(t) != tt.code || r.header.Get("Retry-After") == "") {
				t.Errorf("%s: %s, Retry-After %q", tt.name, r.body, r.header.Get("Retry-After"))
			}
		}
		if counts[200] == 0 || counts[tt.status] == 0 || counts[200]+counts[tt.status] != 6 {
			t.Errorf("%s: statuses %v, want some 200 and some %d", tt.name, counts, tt.status)
		}
	}
}

func TestDrainingIsNotReady(t *testing.T) {
	h := newHarness(t, options{})
	h.srv.Drain()
	r := h.get("/readyz")
	if r.status != 503 || r.json(t)["reason"] != "draining" {
		t.Fatalf("readyz while draining: %d %s", r.status, r.body)
	}
	// Still serving while the load balancer catches up.
	if r := h.postJSON(map[string]string{"image": b64(testimages.Get(t, "tjs_simple.pbm").Bytes)}); r.status != 200 {
		t.Fatalf("read_ocr while draining: %d", r.status)
	}
}

// A keep-alive connection that was idle when the drain began is not closed under its client:
// its next request is answered, with Connection: close, and only then is it closed.
func TestDrainClosesConnectionsAfterAnAnswer(t *testing.T) {
	h := newHarness(t, options{})
	var conns atomic.Int32
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	get := func() *http.Response {
		resp, err := client.Get(h.ts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.Close {
		t.Fatal("Connection: close before the drain")
	}
	h.srv.Drain()
	time.Sleep(100 * time.Millisecond) // a connection closed by the drain would be gone by now
	if resp := get(); !resp.Close || conns.Load() != 1 {
		t.Fatalf("first answer while draining: Close %v on connection %d (want true, on the idle one)", resp.Close, conns.Load())
	}
	get()
	if conns.Load() != 2 {
		t.Fatalf("%d connections: the one answered with Connection: close was reused", conns.Load())
	}
}

// A page stops being recognised as soon as its result cannot be used: the request's time limit
// ran out (504 ocr_timeout) or the client went away (499 in the access log). Each stop must come
// well before the page would have finished, measured against the same page read in full.
func TestSlowPageStops(t *testing.T) {
	slow := b64(testimages.Tiled(t, testimages.Get(t, "eurotext.tif"), 3))
	h := newHarness(t, options{workers: 1, maxImageBytes: 32 << 20})
	req := func(ctx context.Context, id string) *http.Request {
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.ts.URL+"/read_ocr", strings.NewReader(`{"image":"`+slow+`"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Request-Id", id)
		return r
	}
	if r := h.do(req(context.Background(), "full")); r.status != 200 {
		t.Fatalf("slow page in full: %d %s", r.status, r.body)
	}
	full := accessLine(t, h, "full")["ocr_ms"].(float64)
	t.Logf("the slow page takes %.0f ms in full", full)

	t.Run("client leaves", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(full/4)*time.Millisecond)
		defer cancel()
		if resp, err := http.DefaultClient.Do(req(ctx, "gone")); err == nil {
			resp.Body.Close()
			t.Fatalf("the request finished (%d) before the client left", resp.StatusCode)
		}
		rec := accessLine(t, h, "gone")
		if rec["status"] != 499.0 || rec["error"] != "client_closed_request" {
			t.Errorf("access line %v, want status 499 client_closed_request", rec)
		}
		if ocr := rec["ocr_ms"].(float64); ocr > full/2 {
			t.Errorf("OCR ran %.0f ms for a client that left after %.0f ms (%.0f ms in full)", ocr, full/4, full)
		}
	})
	t.Run("time limit", func(t *testing.T) {
		h := newHarness(t, options{workers: 1, maxImageBytes: 32 << 20, requestTimeout: time.Duration(full/4) * time.Millisecond})
		r := h.postJSON(map[string]string{"image": slow})
		if r.status != 504 || r.errorCode(t) != "ocr_timeout" {
			t.Fatalf("page past the request time limit: %d %s, want 504 ocr_timeout", r.status, r.body)
		}
	})
}

// accessLine waits for the access log line of request id and returns it.
func accessLine(t *testing.T, h *harness, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, line := range strings.Split(h.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["request_id"] == id {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access line for request %s in:\n%s", id, h.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that does not read its answer has WriteTimeout to take it; then the server gives
// up the connection and what it had buffered for it (here an answer far larger than the
// socket buffers).
func TestSlowReaderIsDropped(t *testing.T) {
	h := newHarness(t, options{writeTimeout: time.Second})
	const size = 64 << 20
	h.srv.router.Get("/test/big", func(w http.ResponseWriter, r *http.Request) {
		h.srv.respond(w, http.StatusOK, strings.Repeat("x", size))
	})
	c, err := net.Dial("tcp", strings.TrimPrefix(h.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /test/big HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-reader\r\n\r\n")
	rec := accessLine(t, h, "slow-reader") // the handler gave up: the line is written
	if d := rec["duration_ms"].(float64); d < 900 || d > 10000 {
		t.Errorf("the handler ran %.0f ms with a write timeout of 1 s", d)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	// The connection was reset: what the kernel still held for the client is gone, and the
	// client learns it at once instead of trickling megabytes for minutes.
	readStart := time.Now()
	got, err := io.Copy(io.Discard, c)
	if !errors.Is(err, syscall.ECONNRESET) || time.Since(readStart) > 5*time.Second || got >= size {
		t.Errorf("after the write timeout the client read %d bytes in %v, then %v; want a reset at once", got, time.Since(readStart), err)
	}
}
