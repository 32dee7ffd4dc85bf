package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/jobs"
)

// The jobs API, end to end on a real JetStream server (embedded in the test, or listening on
// loopback as an external one) and real workers: every response is held against the contract.

func jobsConfig() *jobs.Config {
	c := jobs.DefaultConfig()
	c.DataDir = ""
	c.AckWait = 2 * time.Second
	c.MaxDeliver = 2
	c.Concurrency = 2
	c.WebhookSecret = "test-secret"
	c.WebhookSchedule = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	c.MaxQueued = 2000
	return &c
}

// submit posts body (marshalled) to /jobs and checks the 202.
func (h *harness) submit(body map[string]any) jobs.Job {
	h.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/jobs", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	r := h.do(req)
	if r.status != http.StatusAccepted {
		h.t.Fatalf("POST /jobs: %d %s", r.status, r.body)
	}
	var j jobs.Job
	decodeJSON(h.t, r.body, &j)
	if loc := r.header.Get("Location"); loc != "/jobs/"+j.ID {
		h.t.Fatalf("Location %q for job %s", loc, j.ID)
	}
	return j
}

func (h *harness) job(id string) jobs.Job {
	h.t.Helper()
	r := h.get("/jobs/" + id)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET /jobs/%s: %d %s", id, r.status, r.body)
	}
	var j jobs.Job
	decodeJSON(h.t, r.body, &j)
	return j
}

// await polls a job until it is done or d passes.
func (h *harness) await(id string, d time.Duration) jobs.Job {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for {
		j := h.job(id)
		if j.Status.Done() {
			return j
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("job %s still %s after %v: %+v", id, j.Status, d, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJobResultsEqualReadOCR(t *testing.T) {
	cfg := jobsConfig()
	cfg.MaxInline = 32 << 10 // the PDF case goes through the object store both ways
	h := newHarness(t, options{jobs: cfg})
	photo := testimages.Get(t, "phototest.tif").Bytes
	pages, _ := docImages(t)
	tiff := testdocs.TIFF(pages[:3], 300)
	// Its searchable PDF (the pages losslessly, 20 KB each) is over twice the inline size too.
	bigTIFF := testdocs.TIFF(append(append([]image.Image{}, pages[:3]...), pages[:3]...), 300)
	for _, c := range []struct {
		name  string
		image []byte
		extra map[string]any
		pages int
	}{
		{"text", photo, nil, 1},
		{"json", photo, map[string]any{"format": "json"}, 1},
		{"hocr", photo, map[string]any{"format": "hocr"}, 1},
		{"tsv of a 3-page TIFF", tiff, map[string]any{"format": "tsv"}, 3},
		{"pages 2-3 as ALTO", tiff, map[string]any{"format": "alto", "pages": "2-3"}, 2},
		// Over the sizes kept in the message and the bucket: input and result in the object store.
		{"a searchable PDF of a 6-page TIFF", bigTIFF, map[string]any{"format": "pdf"}, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"image": b64(c.image)}
			for k, v := range c.extra {
				body[k] = v
			}
			sync := h.postJSON(body)
			if sync.status != http.StatusOK {
				t.Fatalf("read_ocr: %d %s", sync.status, sync.body)
			}
			j := h.submit(body)
			if j.Status != jobs.Queued || j.Progress.PagesDone != 0 {
				t.Fatalf("new job: %+v", j)
			}
			done := h.await(j.ID, time.Minute)
			if done.Status != jobs.Succeeded || done.Progress != (jobs.Progress{PagesDone: c.pages, PagesTotal: c.pages}) ||
				done.Attempts != 1 || done.StartedAt == nil || done.FinishedAt == nil || done.ExpiresAt == nil {
				t.Fatalf("finished job: %+v", done)
			}
			if !done.FinishedAt.After(*done.StartedAt) || done.ExpiresAt.Sub(*done.FinishedAt) != 24*time.Hour {
				t.Errorf("times: started %v finished %v expires %v", done.StartedAt, done.FinishedAt, done.ExpiresAt)
			}
			res := h.get("/jobs/" + j.ID + "/result")
			if c.extra["format"] == "pdf" {
				// pdfcpu writes a fresh document ID each time: the same text, not the same bytes.
				if len(c.image) <= h.jobCfg.MaxInline || len(res.body) <= 2*h.jobCfg.MaxInline {
					t.Errorf("input %d bytes, result %d: not over the inline size %d", len(c.image), len(res.body), h.jobCfg.MaxInline)
				}
				var text struct{ Text string }
				decodeJSON(t, h.postJSON(map[string]any{"image": b64(c.image)}).body, &text)
				checkSearchablePDF(t, res.body, c.pages, text.Text)
				return
			}
			if res.status != http.StatusOK || !bytes.Equal(res.body, sync.body) ||
				res.header.Get("Content-Type") != sync.header.Get("Content-Type") {
				t.Fatalf("result %d %s, %.200q; /read_ocr answered %s, %.200q", res.status, res.header.Get("Content-Type"),
					res.body, sync.header.Get("Content-Type"), sync.body)
			}
		})
	}
}

// A job's pages are in the OCR metrics as /read_ocr's are: the same counters, by the same
// labels (the Shape part of issue 22: the job path used to discard pipeline.Facts).
func TestJobPagesInMetrics(t *testing.T) {
	h := newHarness(t, options{jobs: jobsConfig()})
	pages, _ := docImages(t)
	tiff := testdocs.TIFF(pages[:3], 300)
	metric := func(name string) float64 {
		t.Helper()
		m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(adminGet(t, h, "/metrics"))
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	if r := h.postJSON(map[string]any{"image": b64(tiff)}); r.status != http.StatusOK {
		t.Fatalf("read_ocr: %d %s", r.status, r.body)
	}
	pagesName, ocrName := `readocr_pages_total{format="tiff"}`, `readocr_ocr_duration_seconds_count{source="base64"}`
	if p, o := metric(pagesName), metric(ocrName); p != 3 || o != 1 {
		t.Fatalf("after /read_ocr: %s %v, %s %v", pagesName, p, ocrName, o)
	}
	j := h.submit(map[string]any{"image": b64(tiff)})
	if done := h.await(j.ID, time.Minute); done.Status != jobs.Succeeded {
		t.Fatalf("job: %+v", done)
	}
	if p, o := metric(pagesName), metric(ocrName); p != 6 || o != 2 {
		t.Errorf("after the job: %s %v, %s %v (want 6 and 2)", pagesName, p, ocrName, o)
	}
}

func TestJobErrors(t *testing.T) {
	h := newHarness(t, options{jobs: jobsConfig()})
	photo := b64(testimages.Get(t, "phototest.tif").Bytes)

	// Refused before it is queued, as /read_ocr would refuse it.
	for _, c := range []struct {
		body   map[string]any
		status int
		code   string
	}{
		{map[string]any{"image": photo, "config": "--user-words /etc/passwd"}, 400, "unsupported_config"},
		{map[string]any{"image": photo, "lang": "../eng"}, 400, "invalid_lang"},
		{map[string]any{"image": photo, "format": "docx"}, 400, "invalid_format"},
		{map[string]any{"image": photo, "pages": "3-1"}, 400, "invalid_pages"},
		{map[string]any{"image": "ftp://example.com/a.png"}, 400, "unsupported_url_scheme"},
		{map[string]any{"lang": "eng"}, 400, "bad_request"},
		{map[string]any{"image": photo, "callback_url": "file:///etc/passwd"}, 400, "unsupported_url_scheme"},
		{map[string]any{"image": photo, "idempotency_key": strings.Repeat("k", 201)}, 400, "bad_request"},
	} {
		b, _ := json.Marshal(c.body)
		req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/jobs", bytes.NewReader(b))
		r := h.do(req)
		if r.status != c.status || r.errorCode(t) != c.code {
			t.Errorf("%.80v: %d %s, want %d %s", c.body, r.status, r.body, c.status, c.code)
		}
	}

	// Fails as a job, with the error /read_ocr answers; the result is that error.
	for _, c := range []struct {
		name   string
		image  []byte
		status int
		code   string
	}{
		{"not an image", []byte("GIF89a but not really a GIF at all"), 422, "undecodable_image"},
		{"an encrypted PDF", must(testdocs.Encrypt(testdocs.TextPDF([]string{"secret"}), "pw")), 422, "encrypted_pdf"},
		{"a TIFF claiming 100000x100000", testdocs.TIFFClaiming(100000, 100000), 413, "image_too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sync := h.postJSON(map[string]any{"image": b64(c.image)})
			j := h.await(h.submit(map[string]any{"image": b64(c.image)}).ID, time.Minute)
			if j.Status != jobs.Failed || j.Error == nil || string(j.Error.Code) != c.code || j.Error.Message != sync.json(t)["error"].(map[string]any)["message"] {
				t.Fatalf("job %+v (error %+v); /read_ocr: %s", j, j.Error, sync.body)
			}
			res := h.get("/jobs/" + j.ID + "/result")
			if res.status != c.status || res.errorCode(t) != c.code || sync.status != c.status {
				t.Fatalf("result %d %s; /read_ocr %d %s", res.status, res.body, sync.status, sync.body)
			}
		})
	}

	for _, path := range []string{"/jobs/NOSUCHJOB", "/jobs/NOSUCHJOB/result", "/jobs/..%2F..%2Fetc", "/jobs/" + strings.Repeat("A", 100)} {
		if r := h.get(path); r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, h.ts.URL+"/jobs/NOSUCHJOB", nil)
	if r := h.do(req); r.status != http.StatusNotFound {
		t.Errorf("DELETE of no job: %d %s", r.status, r.body)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A queue with no runner: the backlog bound, the result of a job not done, idempotency, and
// cancelling a queued job.
func TestJobQueue(t *testing.T) {
	cfg := jobsConfig()
	cfg.MaxQueued = 3
	h := newHarness(t, options{jobs: cfg, noRunner: true})
	photo := b64(testimages.Get(t, "phototest.tif").Bytes)

	a := h.submit(map[string]any{"image": photo, "idempotency_key": "order-17"})
	if again := h.submit(map[string]any{"image": photo, "idempotency_key": "order-17"}); again.ID != a.ID {
		t.Errorf("the same idempotency key made job %s, then %s", a.ID, again.ID)
	}
	b := h.submit(map[string]any{"image": photo, "idempotency_key": "order-18"})
	c := h.submit(map[string]any{"image": photo})
	if a.ID == b.ID || b.ID == c.ID {
		t.Fatal("two submissions got the same id")
	}
	b2, _ := json.Marshal(map[string]any{"image": photo})
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/jobs", bytes.NewReader(b2))
	if r := h.do(req); r.status != http.StatusTooManyRequests || r.errorCode(t) != "too_many_jobs" || r.header.Get("Retry-After") == "" {
		t.Fatalf("a job over the backlog's bound: %d %s %v", r.status, r.body, r.header)
	}
	if r := h.get("/jobs/" + a.ID + "/result"); r.status != http.StatusConflict || r.errorCode(t) != "job_not_done" {
		t.Errorf("result of a queued job: %d %s", r.status, r.body)
	}

	// Cancel a queued job: it stays canceled, is never run, and the bound has room again.
	req, _ = http.NewRequest(http.MethodDelete, h.ts.URL+"/jobs/"+c.ID, nil)
	r := h.do(req)
	var canceled jobs.Job
	decodeJSON(t, r.body, &canceled)
	if r.status != http.StatusOK || canceled.Status != jobs.Canceled {
		t.Fatalf("DELETE of a queued job: %d %s", r.status, r.body)
	}
	h.startRunner()
	h.await(a.ID, time.Minute)
	h.await(b.ID, time.Minute)
	if j := h.job(c.ID); j.Status != jobs.Canceled || j.StartedAt != nil {
		t.Errorf("the canceled job ran: %+v", j)
	}
	if r := h.get("/jobs/" + c.ID + "/result"); r.status != http.StatusConflict || r.errorCode(t) != "job_canceled" {
		t.Errorf("result of a canceled job: %d %s", r.status, r.body)
	}
	// A finished job is deleted with its result.
	req, _ = http.NewRequest(http.MethodDelete, h.ts.URL+"/jobs/"+a.ID, nil)
	if r := h.do(req); r.status != http.StatusNoContent {
		t.Fatalf("DELETE of a finished job: %d %s", r.status, r.body)
	}
	if r := h.get("/jobs/" + a.ID); r.status != http.StatusNotFound {
		t.Errorf("a deleted job: %d %s", r.status, r.body)
	}
	waitFor(t, func() bool { n, _ := h.broker.Queued(context.Background()); return n == 0 }, "the stream empty")
}

// Cancelling a running page stops it between words: the worker is free again long before the
// page would have ended.
func TestJobCancelStopsThePage(t *testing.T) {
	cfg := jobsConfig()
	cfg.Concurrency = 1
	h := newHarness(t, options{jobs: cfg, workers: 1})
	slow := h.submit(map[string]any{"image": b64(testimages.SpecksBytes(2600, 2600, 20))})
	waitFor(t, func() bool { return h.job(slow.ID).Status == jobs.Running }, "the job running")
	time.Sleep(300 * time.Millisecond)
	req, _ := http.NewRequest(http.MethodDelete, h.ts.URL+"/jobs/"+slow.ID, nil)
	start := time.Now()
	if r := h.do(req); r.status != http.StatusOK {
		t.Fatalf("DELETE of a running job: %d %s", r.status, r.body)
	}
	next := h.await(h.submit(map[string]any{"image": b64(testimages.Get(t, "phototest.tif").Bytes)}).ID, time.Minute)
	if next.Status != jobs.Succeeded {
		t.Fatalf("the next job: %+v", next)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the worker was busy %v after the cancel", took)
	}
	if j := h.job(slow.ID); j.Status != jobs.Canceled {
		t.Errorf("the canceled job: %+v", j)
	}
	if !strings.Contains(h.logs.String(), `"msg":"job canceled"`) {
		t.Error("the runner did not log the cancel")
	}
}

// Jobs queued when the process stops run after it starts again (embedded broker, same data
// directory).
func TestJobsSurviveARestart(t *testing.T) {
	h := newHarness(t, options{jobs: jobsConfig(), noRunner: true})
	photo := b64(testimages.Get(t, "gos_001-helloworld.png").Bytes)
	var ids []string
	for range 5 {
		ids = append(ids, h.submit(map[string]any{"image": photo}).ID)
	}
	h.closeJobs()
	h.openJobs(true)
	for _, id := range ids {
		if j := h.await(id, time.Minute); j.Status != jobs.Succeeded {
			t.Errorf("job %s after the restart: %+v", id, j)
		}
	}
}

// A job whose worker stops without a word (a process killed) is given to another worker after
// the ack wait; a job that every worker dies on fails as worker_lost after MaxDeliver.
func TestJobRedeliveryAndMaxDeliver(t *testing.T) {
	h := newHarness(t, options{jobs: jobsConfig(), noRunner: true})
	photo := b64(testimages.Get(t, "gos_001-helloworld.png").Bytes)
	nc, cons := dyingWorker(t, h)
	defer nc.Close()

	// Taken once by a worker that dies, then by a live one.
	redelivered := h.submit(map[string]any{"image": photo})
	takeAndDie(t, cons)
	h.startRunner()
	if j := h.await(redelivered.ID, time.Minute); j.Status != jobs.Succeeded || j.Attempts != 2 {
		t.Fatalf("redelivered job: %+v", j)
	}

	// Taken by dying workers as many times as MaxDeliver allows.
	h.closeJobs()
	h.openJobs(false)
	nc2, cons2 := dyingWorker(t, h)
	defer nc2.Close()
	lost := h.submit(map[string]any{"image": photo})
	takeAndDie(t, cons2)
	takeAndDie(t, cons2)
	h.startRunner() // listens for the advisory that the deliveries ran out
	j := h.await(lost.ID, time.Minute)
	if j.Status != jobs.Failed || j.Error == nil || j.Error.Code != "worker_lost" || !strings.Contains(j.Error.Message, "2 times") {
		t.Fatalf("a job its workers died on: %+v %+v", j, j.Error)
	}
	if r := h.get("/jobs/" + lost.ID + "/result"); r.status != http.StatusInternalServerError || r.errorCode(t) != "worker_lost" {
		t.Errorf("its result: %d %s", r.status, r.body)
	}
	waitFor(t, func() bool { n, _ := h.broker.Queued(context.Background()); return n == 0 }, "the stream empty")
}

// dyingWorker connects to the test's JetStream as a worker process would.
func dyingWorker(t *testing.T, h *harness) (interface{ Close() }, jetstream.Consumer) {
	t.Helper()
	nc, err := h.broker.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	cons, err := js.Consumer(context.Background(), "READOCR_JOBS", "workers")
	if err != nil {
		t.Fatal(err)
	}
	return nc, cons
}

// takeAndDie takes a job and never answers for it, as a worker killed mid-page.
func takeAndDie(t *testing.T, cons jetstream.Consumer) {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++
	}
	if n != 1 {
		t.Fatalf("took %d jobs, want 1 (%v)", n, batch.Error())
	}
}

// An external JetStream server (loopback): jobs complete while it restarts, none lost or
// doubled.
func TestJobsOnAnExternalServerThatRestarts(t *testing.T) {
	dir := t.TempDir()
	ns := startNATS(t, dir, -1)
	port := ns.Addr().(interface{ String() string }).String()
	_, p, _ := strings.Cut(port, ":")
	portNum, _ := strconv.Atoi(p)
	cfg := jobsConfig()
	cfg.NATSURL = ns.ClientURL()
	h := newHarness(t, options{jobs: cfg})
	photo := b64(testimages.Get(t, "gos_001-helloworld.png").Bytes)

	var ids []string
	for range 20 {
		ids = append(ids, h.submit(map[string]any{"image": photo}).ID)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	time.Sleep(500 * time.Millisecond)
	ns = startNATS(t, dir, portNum)
	defer ns.Shutdown()
	for range 20 {
		ids = append(ids, h.submit(map[string]any{"image": photo}).ID)
	}
	for _, id := range ids {
		if j := h.await(id, 2*time.Minute); j.Status != jobs.Succeeded || j.Attempts > 2 {
			t.Errorf("job %s: %+v", id, j)
		}
	}
	if !strings.Contains(h.logs.String(), "NATS reconnected") {
		t.Error("no reconnection logged")
	}
}

func startNATS(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns
}

// 1,000 jobs through 2 workers: each succeeds once, with the result /read_ocr gives.
func TestThousandJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 jobs")
	}
	// Each job must run exactly once: the ack wait is production's order of magnitude, not the
	// harness's 2 s (made for tests of redelivery). A warm CI run under -race on the loaded
	// machine saw one job of 1,000 delivered twice with 2 s: its first delivery did not send a
	// heartbeat in time (the record is read and updated before the first one).
	cfg := jobsConfig()
	cfg.AckWait = 15 * time.Second
	h := newHarness(t, options{jobs: cfg, workers: 2})
	img := testimages.Get(t, "gos_001-helloworld.png").Bytes
	want := h.postJSON(map[string]any{"image": b64(img)})
	body, _ := json.Marshal(map[string]any{"image": b64(img)})
	const n = 1000
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(h.ts.URL+"/jobs", "application/json", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var j jobs.Job
			if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&j) != nil {
				errs <- fmt.Errorf("POST /jobs: %s", resp.Status)
				return
			}
			ids[i] = j.ID
		}()
		if i%50 == 49 {
			wg.Wait()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("id %s given twice", id)
		}
		seen[id] = true
		j := h.await(id, 5*time.Minute)
		if j.Status != jobs.Succeeded || j.Attempts != 1 {
			t.Fatalf("job %s: %+v", id, j)
		}
		resp, err := http.Get(h.ts.URL + "/jobs/" + id + "/result")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, want.body) {
			t.Fatalf("job %s result %q, /read_ocr %q", id, got, want.body)
		}
	}
	if c := strings.Count(h.logs.String(), `"msg":"job finished"`); c != n {
		t.Errorf("%d jobs finished, want %d (each exactly once)", c, n)
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
