package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// Pages as tasks (a document's pages read by any worker), page errors and partial results,
// events, fairness: on a real JetStream server and real workers, every response held against
// the contract (the events' stream read raw).

// A document of cfg.SplitPages pages or more is read as page tasks: the answer is /read_ocr's,
// byte for byte, in every format that is deterministic, and each page is read once.
func TestJobPagesAsTasks(t *testing.T) {
	cfg := jobsConfig()
	cfg.SplitPages, cfg.PageWindow = 4, 3 // the window is smaller than the document: the tasks chain
	h := newHarness(t, options{jobs: cfg})
	pages, _ := docImages(t)
	var doc []image.Image
	for len(doc) < 7 {
		doc = append(doc, pages...)
	}
	tiff := testdocs.TIFF(doc[:7], 300)
	for _, format := range []string{"text", "json", "hocr", "alto", "tsv"} {
		t.Run(format, func(t *testing.T) {
			body := map[string]any{"image": b64(tiff), "format": format}
			sync := h.postJSON(body)
			j := h.submit(body)
			done := h.await(j.ID, 2*time.Minute)
			if done.Status != jobs.Succeeded || done.Progress != (jobs.Progress{PagesDone: 7, PagesTotal: 7}) || len(done.PageErrors) != 0 {
				t.Fatalf("job: %+v", done)
			}
			res := h.get("/jobs/" + j.ID + "/result")
			if res.status != 200 || !bytes.Equal(res.body, sync.body) || res.header.Get("Content-Type") != sync.header.Get("Content-Type") {
				t.Errorf("result %d %.300q\n/read_ocr %d %.300q", res.status, res.body, sync.status, sync.body)
			}
			logs := h.logs.String()
			if !strings.Contains(logs, `"msg":"job split into page tasks","job":"`+j.ID) {
				t.Error("the job was not split")
			}
			if n := strings.Count(logs, `"msg":"page read","job":"`+j.ID); n != 7 {
				t.Errorf("%d pages read, want 7", n)
			}
		})
	}
}

// A document with unreadable pages: the others are read, the job ends succeeded_with_errors
// with a page error each, in the record and in the JSON answers; the text marks them; the
// pages done can be had by pages=.
func TestJobPageErrors(t *testing.T) {
	cfg := jobsConfig()
	cfg.SplitPages, cfg.PageWindow = 4, 4
	h := newHarness(t, options{jobs: cfg})
	imgs, _ := docImages(t)
	var doc []image.Image
	for len(doc) < 8 {
		doc = append(doc, imgs...)
	}
	doc = doc[:8]
	tiff := testdocs.TIFFWithUnreadable(doc, 300, 2, 5) // pages 3 and 6
	good := testdocs.TIFF(append(append(append([]image.Image{}, doc[:2]...), doc[3:5]...), doc[6:]...), 300)
	var want struct{ Text string }
	decodeJSON(t, h.postJSON(map[string]any{"image": b64(good)}).body, &want)
	wantPages := strings.Split(want.Text, "\f")

	if r := h.postJSON(map[string]any{"image": b64(tiff)}); r.status < 400 {
		t.Errorf("/read_ocr fails whole on a bad page: %d", r.status)
	}
	for _, format := range []string{"text", "json"} {
		j := h.submit(map[string]any{"image": b64(tiff), "format": format})
		done := h.await(j.ID, 2*time.Minute)
		if done.Status != jobs.SucceededWithErrors || done.Progress.PagesDone != 8 || len(done.PageErrors) != 2 {
			t.Fatalf("%s job: %+v", format, done)
		}
		var pageNumbers []int
		for _, e := range done.PageErrors {
			pageNumbers = append(pageNumbers, e.Page)
			if e.Code == "" || e.Message == "" {
				t.Errorf("page error %+v", e)
			}
		}
		slices.Sort(pageNumbers)
		if !slices.Equal(pageNumbers, []int{3, 6}) {
			t.Errorf("page errors on pages %v", pageNumbers)
		}
		res := h.get("/jobs/" + j.ID + "/result")
		var got struct {
			Text       string
			Pages      []struct{ Page int }
			PageErrors []struct{ Page int } `json:"page_errors"`
		}
		decodeJSON(t, res.body, &got)
		texts := strings.Split(got.Text, "\f")
		if res.status != 200 || len(texts) != 8 || len(got.PageErrors) != 2 {
			t.Fatalf("%s result %d: %d pages, %d page errors", format, res.status, len(texts), len(got.PageErrors))
		}
		for i, k := 0, 0; i < 8; i++ {
			if i == 2 || i == 5 {
				if !strings.HasPrefix(texts[i], fmt.Sprintf("[page %d not read: ", i+1)) {
					t.Errorf("page %d: %q", i+1, texts[i])
				}
				continue
			}
			if texts[i] != wantPages[k] {
				t.Errorf("page %d: %q, want %q", i+1, texts[i], wantPages[k])
			}
			k++
		}
		if format == "json" && len(got.Pages) != 6 {
			t.Errorf("json pages %d, want 6", len(got.Pages))
		}
		// Partial: pages 2-3 (one read, one failed), the headers count them.
		part := h.get("/jobs/" + j.ID + "/result?pages=2-3")
		decodeJSON(t, part.body, &got)
		if part.status != 200 || part.header.Get("Pages-Done") != "2" || part.header.Get("Pages-Selected") != "2" ||
			len(strings.Split(got.Text, "\f")) != 2 || len(got.PageErrors) != 1 {
			t.Errorf("pages=2-3: %d %v %q", part.status, part.header, part.body)
		}
		// Deleted with its pages: nothing left to ask for.
		req, _ := http.NewRequest(http.MethodDelete, h.ts.URL+"/jobs/"+j.ID, nil)
		if r := h.do(req); r.status != http.StatusNoContent {
			t.Errorf("DELETE: %d", r.status)
		}
		if r := h.get("/jobs/" + j.ID + "/result?pages=2-3"); r.status != http.StatusNotFound {
			t.Errorf("pages= after DELETE: %d", r.status)
		}
	}
	if r := h.get("/jobs/AAAA/result?pages=x"); r.status != 400 && r.status != 404 {
		t.Errorf("bad pages: %d", r.status)
	}
}

// sseEvent is one event of a text/event-stream.
type sseEvent struct {
	id, typ string
	job     struct {
		jobs.Job
		Page int `json:"page"`
	}
}

// GET /jobs/{id}/events: a page event per page as it is checkpointed (failed ones as
// page.failed), then job.done; Last-Event-ID resumes after an event, none twice.
func TestJobEvents(t *testing.T) {
	cfg := jobsConfig()
	cfg.SplitPages, cfg.PageWindow = 4, 4
	h := newHarness(t, options{jobs: cfg})
	imgs, _ := docImages(t)
	var doc []image.Image
	for len(doc) < 8 {
		doc = append(doc, imgs...)
	}
	j := h.submit(map[string]any{"image": b64(testdocs.TIFFWithUnreadable(doc[:8], 300, 2, 5))})
	events := readEvents(t, h.ts.URL, j.ID, "") // from the start, as the job runs
	count := map[string]int{}
	var pages []int
	last := 0
	for i, ev := range events {
		count[ev.typ]++
		n, _ := strconv.Atoi(ev.id)
		if n <= last {
			t.Errorf("event %d: id %q after %d", i, ev.id, last)
		}
		last = n
		if ev.typ != "job.done" {
			pages = append(pages, ev.job.Page)
			if ev.job.Progress.PagesDone != i+1 {
				t.Errorf("event %d: %d pages done", i, ev.job.Progress.PagesDone)
			}
		}
	}
	slices.Sort(pages)
	if count["page.done"] != 6 || count["page.failed"] != 2 || count["job.done"] != 1 || len(events) != 9 ||
		events[8].typ != "job.done" || events[8].job.Status != jobs.SucceededWithErrors || !slices.Equal(pages, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("events %v, pages %v, last %+v", count, pages, events[len(events)-1])
	}
	// Resuming after the third: the six after it.
	rest := readEvents(t, h.ts.URL, j.ID, events[2].id)
	if len(rest) != 6 || rest[0].id != events[3].id || rest[5].typ != "job.done" {
		t.Errorf("after %s: %d events, first %s", events[2].id, len(rest), rest[0].id)
	}
	// A whole job (fewer pages than SplitPages) has its job.done; an unknown job is a 404.
	w := h.submit(map[string]any{"image": b64(testimages.Get(t, "phototest.tif").Bytes)})
	if ev := readEvents(t, h.ts.URL, w.ID, ""); len(ev) != 1 || ev[0].typ != "job.done" || ev[0].job.Status != jobs.Succeeded {
		t.Errorf("a whole job's events: %+v", ev)
	}
	if r := h.get("/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAA/events"); r.status != 404 {
		t.Errorf("unknown job: %d", r.status)
	}
}

// Fairness: a client's long document starves neither another's single page nor another's
// document. Jobs are taken before page tasks (a single page, read whole, waits for the page in
// progress only, whatever the window); a document's pages queue behind at most PageWindow of
// an earlier document's (without the bound, a window as large as the document, behind all).
func TestJobFairness(t *testing.T) {
	imgs, _ := docImages(t)
	var doc []image.Image
	for len(doc) < 16 {
		doc = append(doc, imgs...)
	}
	long := b64(testdocs.TIFF(doc[:16], 300))
	single := b64(testimages.Get(t, "gos_001-helloworld.png").Bytes)
	// Counted from each submission (pages the first document had done before it are not waits:
	// on a loaded machine the submissions themselves take a while); the unbounded case counts
	// from the start, as "behind all" means. The single page is awaited before the second
	// document is sent: uploading 16 pages under the race detector took over a second, and
	// pages read meanwhile were once counted as the single page's wait (4 to 7 of them, while
	// the runner had taken it within 31 ms and read it in 46).
	run := func(window int) (singleAhead, docAhead, docTotal int) {
		cfg := jobsConfig()
		cfg.Concurrency, cfg.SplitPages, cfg.PageWindow = 1, 4, window
		h := newHarness(t, options{workers: 1, jobs: cfg, maxImageBytes: 8 << 20})
		first := h.submit(map[string]any{"image": long})
		waitFor(t, func() bool { return h.job(first.ID).Progress.PagesDone >= 1 }, "the document going")
		small := h.submit(map[string]any{"image": single})
		atSmall := h.job(first.ID).Progress.PagesDone
		if done := h.await(small.ID, 2*time.Minute); done.Status != jobs.Succeeded {
			t.Fatalf("the single page: %+v", done)
		}
		singleAhead = h.job(first.ID).Progress.PagesDone - atSmall // read while the single page waited
		second := h.submit(map[string]any{"image": long})
		atSecond := h.job(first.ID).Progress.PagesDone
		waitFor(t, func() bool { return h.job(second.ID).Progress.PagesDone >= 1 }, "the second document going")
		docTotal = h.job(first.ID).Progress.PagesDone
		docAhead = docTotal - atSecond
		h.await(first.ID, 2*time.Minute)
		h.await(second.ID, 2*time.Minute)
		return singleAhead, docAhead, docTotal
	}
	s2, d2, _ := run(2)
	s16, _, t16 := run(16)
	t.Logf("pages of the first 16-page document read while the single page waited: %d (window 2), %d (window 16); "+
		"after the second document was submitted, before its first page: %d (window 2); done before it without a bound: %d",
		s2, s16, d2, t16)
	// The single page waits for the page in progress only (jobs are taken first); one more
	// page may finish between the single page's end and the poll that sees it. In the order
	// they came it would wait for every page left, 14 or more.
	if s2 > 2 || s16 > 2 {
		t.Errorf("the single page waited behind %d and %d pages (want 2 at most: the page in progress, and one while polled; first come, first served would be 14 or more)", s2, s16)
	}
	if d2 > 4 || t16 < 13 {
		t.Errorf("the second document waited behind %d pages with a window of 2 (want 4 at most), %d of 16 without a bound (want 13 or more)", d2, t16)
	}
}

// readEvents reads GET /jobs/{id}/events (after lastID when not "") until the stream ends.
func readEvents(t *testing.T, base, id, lastID string) []sseEvent {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/jobs/"+id+"/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var out []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			decodeJSON(t, []byte(line[6:]), &ev.job)
		case line == "" && ev.typ != "":
			out = append(out, ev)
			ev = sseEvent{}
		}
	}
	return out
}

// The headers of a submission ride on the job's message and on each of its page tasks (where
// trace context will), the service's own beside them.
func TestJobHeadersReachPageTasks(t *testing.T) {
	cfg := jobsConfig()
	cfg.SplitPages = 4
	h := newHarness(t, options{jobs: cfg})
	nc, err := h.broker.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tasks, err := nc.SubscribeSync("readocr.pages.*")
	if err != nil {
		t.Fatal(err)
	}
	imgs, _ := docImages(t)
	var doc []image.Image
	for len(doc) < 5 {
		doc = append(doc, imgs...)
	}
	in := pipeline.Input{Image: testdocs.TIFF(doc[:5], 300), Source: "base64"}
	job, err := jobs.New(h.broker, h.pipe).Submit(context.Background(), jobs.Submission{Input: in,
		Header: map[string][]string{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}})
	if err != nil {
		t.Fatal(err)
	}
	h.await(job.ID, 2*time.Minute)
	for i := range 5 {
		m, err := tasks.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if got := m.Header.Get("Traceparent"); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || m.Header.Get("Nats-Msg-Id") == "" {
			t.Errorf("task %d headers: %v", i, m.Header)
		}
	}
}

// A PDF split into page tasks: its text is /read_ocr's, and its searchable PDF is the document
// with each page's text layer, assembled from pages read by the workers one by one.
func TestJobPDFAsTasks(t *testing.T) {
	cfg := jobsConfig()
	cfg.SplitPages = 4
	h := newHarness(t, options{jobs: cfg, maxImageBytes: 8 << 20})
	imgs, _ := docImages(t)
	var doc []image.Image
	for len(doc) < 5 {
		doc = append(doc, imgs...)
	}
	scan := testdocs.ScannedPDF(doc[:5], 300)
	sync := h.postJSON(map[string]any{"image": b64(scan)})
	var text struct{ Text string }
	decodeJSON(t, sync.body, &text)
	j := h.submit(map[string]any{"image": b64(scan)})
	if done := h.await(j.ID, 2*time.Minute); done.Status != jobs.Succeeded || done.Progress.PagesTotal != 5 {
		t.Fatalf("text job: %+v", done)
	}
	if res := h.get("/jobs/" + j.ID + "/result"); !bytes.Equal(res.body, sync.body) {
		t.Errorf("text: %.200q, /read_ocr %.200q", res.body, sync.body)
	}
	p := h.submit(map[string]any{"image": b64(scan), "format": "pdf"})
	if done := h.await(p.ID, 2*time.Minute); done.Status != jobs.Succeeded {
		t.Fatalf("pdf job: %+v", done)
	}
	if !strings.Contains(h.logs.String(), `"msg":"job split into page tasks","job":"`+p.ID) {
		t.Error("the PDF job was not split")
	}
	checkSearchablePDF(t, h.get("/jobs/"+p.ID+"/result").body, 5, text.Text)
}

// callback_pages: the webhook carries each page's event, signed as the final callback, with
// its own webhook-id; the record's callback state is the final callback's.
func TestJobPageCallbacks(t *testing.T) {
	var mu sync.Mutex
	types := map[string]int{}
	ids := map[string]bool{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev struct{ Type string }
		json.Unmarshal(b, &ev)
		mu.Lock()
		defer mu.Unlock()
		if readmeVerify("test-secret", b, r.Header) == nil {
			types[ev.Type]++
			ids[r.Header.Get("webhook-id")] = true
		}
	}))
	defer receiver.Close()
	cfg := jobsConfig()
	cfg.SplitPages = 4
	h := newHarness(t, options{jobs: cfg, allowPrivate: true})
	imgs, _ := docImages(t)
	var doc []image.Image
	for len(doc) < 5 {
		doc = append(doc, imgs...)
	}
	j := h.submit(map[string]any{"image": b64(testdocs.TIFFWithUnreadable(doc[:5], 300, 1)), "callback_url": receiver.URL, "callback_pages": true})
	h.await(j.ID, 2*time.Minute)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(ids) == 6 }, "six callbacks")
	waitFor(t, func() bool { cb := h.job(j.ID).Callback; return cb != nil && cb.State == jobs.CallbackDelivered }, "the final one recorded")
	mu.Lock()
	defer mu.Unlock()
	if types["page.done"] != 4 || types["page.failed"] != 1 || types["job.succeeded_with_errors"] != 1 {
		t.Errorf("callbacks %v", types)
	}
}
