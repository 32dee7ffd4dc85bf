package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// Pages as tasks across real processes: two readocr binaries of one OCR worker each share a
// JetStream server on loopback, and read a 40-page document's pages between them.

type pagesJob struct {
	ID       string
	Status   string
	Attempts int
	Progress struct {
		PagesDone  int `json:"pages_done"`
		PagesTotal int `json:"pages_total"`
	}
	PageErrors []struct {
		Page int
		Code string
	} `json:"page_errors"`
}

type cluster struct {
	t     *testing.T
	bin   string
	nats  string
	args  []string
	procs []*process
}

func newCluster(t *testing.T, extra ...string) *cluster {
	bin := filepath.Join(t.TempDir(), "readocr")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	c := &cluster{t: t, bin: bin, nats: ns.ClientURL()}
	c.args = append([]string{"--workers", "1", "--job-concurrency", "1", "--nats-url", c.nats, "--job-ack-wait", "3s",
		"--max-image-bytes", "33554432"}, extra...)
	c.procs = []*process{c.start(), c.start()}
	return c
}

func (c *cluster) start() *process { return startBinary(c.t, c.bin, c.args...) }

// doc40 is a 40-page TIFF of the test page; the pages at the indexes bad cannot be read.
func doc40(t *testing.T, bad ...int) []byte {
	img, err := testdocs.Decode(testimages.Get(t, "phototest.tif").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]image.Image, 40)
	for i := range pages {
		pages[i] = img
	}
	return testdocs.TIFFWithUnreadable(pages, 300, bad...)
}

func (c *cluster) submit(doc []byte) pagesJob {
	body := `{"image":"` + base64.StdEncoding.EncodeToString(doc) + `"}`
	resp, err := http.Post(c.procs[0].base+"/jobs", "application/json", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var j pagesJob
	json.NewDecoder(resp.Body).Decode(&j)
	if resp.StatusCode != http.StatusAccepted {
		c.t.Fatalf("POST /jobs: %s", resp.Status)
	}
	return j
}

// job asks any live process.
func (c *cluster) job(id string) pagesJob {
	var j pagesJob
	for _, p := range c.procs {
		if p.cmd.ProcessState == nil && getJSON(c.t, p.base+"/jobs/"+id, &j) == 200 {
			return j
		}
	}
	c.t.Fatal("no process answers")
	return j
}

func (c *cluster) await(id string, d time.Duration) pagesJob {
	deadline := time.Now().Add(d)
	for {
		j := c.job(id)
		if j.Status != "queued" && j.Status != "running" {
			return j
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job still %s after %v: %+v", j.Status, d, j)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var pageRead = regexp.MustCompile(`"msg":"page read","job":"([A-Z2-7]+)","page":(\d+),"index":(\d+)`)

// reads counts the "page read" lines of job id in a log, by page.
func reads(log, id string) map[string]int {
	n := map[string]int{}
	for _, m := range pageRead.FindAllStringSubmatch(log, -1) {
		if m[1] == id {
			n[m[2]]++
		}
	}
	return n
}

// A worker killed (SIGKILL) at page ~30 of 40: the pages it had read are not read again, the
// page it was reading is read by the other after the ack wait, the job succeeds.
func TestPagesSurviveAKilledWorker(t *testing.T) {
	c := newCluster(t)
	j := c.submit(doc40(t))
	for j = c.job(j.ID); j.Progress.PagesDone < 30; j = c.job(j.ID) {
		if j.Status != "running" && j.Status != "queued" {
			t.Fatalf("before the kill: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	victim, survivor := c.procs[0], c.procs[1]
	victim.cmd.Process.Signal(syscall.SIGKILL)
	victim.cmd.Wait()
	before := reads(victim.out.String(), j.ID)
	done := 0
	for _, n := range before {
		done += n
	}
	t.Logf("killed at %d of 40 pages done; the killed process had read %d of them", j.Progress.PagesDone, done)
	j = c.await(j.ID, 3*time.Minute)
	if j.Status != "succeeded" || j.Progress.PagesDone != 40 || len(j.PageErrors) != 0 {
		t.Fatalf("after the kill: %+v", j)
	}
	after := reads(survivor.out.String(), j.ID)
	redone, total := 0, 0
	for page, n := range after {
		total += n
		if before[page] > 0 {
			redone++
		}
		if n > 1 {
			t.Errorf("page %s read %d times by the survivor", page, n)
		}
	}
	// A page the killed process had checkpointed but not yet logged ("page read" comes after
	// the checkpoint) is in neither log, and rightly not read again: at most the one task it
	// held (--job-concurrency 1). A CI run saw one such page (39 reads logged of 40).
	seen := map[string]bool{}
	for page := range before {
		seen[page] = true
	}
	for page := range after {
		seen[page] = true
	}
	unlogged := 40 - len(seen)
	t.Logf("pages read: %d by the killed process, %d by the survivor, %d read again, %d done by the killed process unlogged", done, total, redone, unlogged)
	if redone != 0 || unlogged < 0 || unlogged > 1 {
		t.Errorf("%d pages read again (want 0); %d pages in neither log (want at most the one task the killed process held)", redone, unlogged)
	}
	resp, err := http.Get(survivor.base + "/jobs/" + j.ID + "/result")
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Text string }
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if pages := strings.Split(res.Text, "\f"); len(pages) != 40 || !strings.Contains(pages[39], "quick brown") {
		t.Errorf("result: %d pages, last %.80q", len(pages), pages[len(pages)-1])
	}
}

// Three drains in a row (SIGTERM, the page in flight stopped at once and given back), with a
// failure budget of one delivery: a give-back is not counted, so the job succeeds.
func TestPagesSurviveThreeDrains(t *testing.T) {
	c := newCluster(t, "--shutdown-timeout", "1ms", "--job-max-deliver", "1")
	j := c.submit(doc40(t))
	given := 0
	for drain := range 3 {
		at := j.Progress.PagesDone + 5
		for j = c.job(j.ID); j.Progress.PagesDone < at; j = c.job(j.ID) {
			if j.Status != "running" && j.Status != "queued" {
				t.Fatalf("drain %d: %+v", drain, j)
			}
			time.Sleep(20 * time.Millisecond)
		}
		i := drain % 2
		p := c.procs[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.cmd.Wait()
		n := strings.Count(p.out.String(), `"msg":"page given back","job":"`+j.ID)
		given += n
		t.Logf("drain %d at %d pages done: %d pages given back", drain+1, j.Progress.PagesDone, n)
		if n == 0 {
			t.Logf("its log's end:\n%s", tail(p.out.String(), 6))
		}
		c.procs[i] = c.start()
	}
	j = c.await(j.ID, 3*time.Minute)
	if j.Status != "succeeded" || j.Progress.PagesDone != 40 || len(j.PageErrors) != 0 {
		t.Fatalf("after three drains: %+v", j)
	}
	t.Logf("pages given back by the drains: %d", given)
	if given == 0 {
		t.Error("no drain gave a page back: the test proved nothing about the budget")
	}
}

// 40 pages, 2 of which cannot be read: 38 texts and 2 page errors, in the record, in the JSON
// answer and as events.
func TestPagesWithErrorsAcrossProcesses(t *testing.T) {
	c := newCluster(t)
	j := c.submit(doc40(t, 9, 29)) // pages 10 and 30
	req, _ := http.NewRequest(http.MethodGet, c.procs[1].base+"/jobs/"+j.ID+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]int{}
	var failed []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	typ := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			typ = v
			events[typ]++
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && typ == "page.failed" {
			var ev struct{ Page int }
			json.Unmarshal([]byte(v), &ev)
			failed = append(failed, fmt.Sprint(ev.Page))
		}
	}
	resp.Body.Close()
	j = c.await(j.ID, 3*time.Minute)
	if j.Status != "succeeded_with_errors" || len(j.PageErrors) != 2 {
		t.Fatalf("job: %+v", j)
	}
	if events["page.done"] != 38 || events["page.failed"] != 2 || events["job.done"] != 1 || strings.Join(failed, ",") != "10,30" && strings.Join(failed, ",") != "30,10" {
		t.Errorf("events %v, failed pages %v", events, failed)
	}
	resp, err = http.Get(c.procs[0].base + "/jobs/" + j.ID + "/result")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Text       string
		PageErrors []struct{ Page int } `json:"page_errors"`
	}
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	texts := 0
	for i, p := range strings.Split(res.Text, "\f") {
		if strings.Contains(p, "quick brown") {
			texts++
		} else if !strings.HasPrefix(p, fmt.Sprintf("[page %d not read", i+1)) {
			t.Errorf("page %d: %.80q", i+1, p)
		}
	}
	if texts != 38 || len(res.PageErrors) != 2 {
		t.Errorf("%d texts, %d page errors", texts, len(res.PageErrors))
	}
	n0, n1 := len(reads(c.procs[0].out.String(), j.ID)), len(reads(c.procs[1].out.String(), j.ID))
	t.Logf("pages read by each process: %d and %d", n0, n1)
	if n0 == 0 || n1 == 0 {
		t.Error("one process read every page")
	}
}
