package e2e

import (
	"bytes"
	"encoding/json"
	"image"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

type job struct {
	ID       string
	Status   string
	Attempts int
	Progress struct {
		PagesDone  int `json:"pages_done"`
		PagesTotal int `json:"pages_total"`
	}
	Error      *struct{ Code, Message string }
	PageErrors []struct{ Page int } `json:"page_errors"`
}

func getJob(t *testing.T, base, id string) job {
	t.Helper()
	var j job
	for range 10 { // an API pod may be replaced meanwhile
		resp, err := http.Get(base + "/jobs/" + id)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&j)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				return j
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("GET /jobs/%s keeps failing", id)
	return j
}

func awaitJob(t *testing.T, base, id, what string, within time.Duration, ok func(job) bool) job {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(500 * time.Millisecond) {
		j := getJob(t, base, id)
		if ok(j) {
			return j
		}
		if j.Status == "failed" || j.Status == "canceled" || time.Now().After(deadline) {
			t.Fatalf("waiting for %s: job %+v", what, j)
		}
	}
}

// workerReading is a worker pod (not one of exclude) whose log says it read a page of the job.
func workerReading(t *testing.T, ns, id string, exclude ...string) string {
	t.Helper()
	re := regexp.MustCompile(`^\[pod/([^/]+)/[^]]+\] .*"msg":"page read","job":"` + id + `"`)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		out, _ := exec.Command("kubectl", "logs", "-n", ns, "-l", "app.kubernetes.io/instance=readocr-worker",
			"--prefix", "--tail=-1", "--max-log-requests=10").CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if m := re.FindStringSubmatch(line); m != nil && !slices.Contains(exclude, m[1]) {
				return m[1]
			}
		}
	}
	t.Fatalf("no worker pod (but %v) logged a page of job %s", exclude, id)
	return ""
}

// A 16-page scanned PDF (about 40 s of OCR on one worker) queued through the Service: its pages
// are tasks that the worker pods share. A pod reading them is deleted mid-job as a scale-in or
// a drain deletes it (SIGTERM: it finishes or gives back its page), then another is killed
// outright (no goodbye: JetStream redelivers its page after the ack wait). The job still
// succeeds, with every page, in order.
func jobSurvivesWorkerDeletion(t *testing.T, ns, base string) {
	img, err := testdocs.Decode(testimages.Tiled(t, testimages.Must("eurotext.tif"), 3))
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]image.Image, 16)
	for i := range pages {
		pages[i] = img
	}
	doc := testdocs.ScannedPDF(pages, 300)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("format", "json")
	fw, _ := mw.CreateFormFile("image", "scan.pdf")
	fw.Write(doc)
	mw.Close()
	began := time.Now()
	resp, err := http.Post(base+"/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	var queued job
	json.NewDecoder(resp.Body).Decode(&queued)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || queued.ID == "" || resp.Header.Get("Location") != "/jobs/"+queued.ID {
		t.Fatalf("POST /jobs of a %d KB PDF: %d %+v Location %q", len(doc)>>10, resp.StatusCode, queued, resp.Header.Get("Location"))
	}
	id := queued.ID
	t.Logf("job %s: a %d-page PDF (%d KB) queued through the Service", id, len(pages), len(doc)>>10)

	j := awaitJob(t, base, id, "page 1 done", 3*time.Minute, func(j job) bool { return j.Status == "running" && j.Progress.PagesDone >= 1 })
	first := workerReading(t, ns, id)
	t.Logf("+%v: %d/%d pages done, %s reading: kubectl delete pod %s", time.Since(began).Round(time.Second), j.Progress.PagesDone, j.Progress.PagesTotal, first, first)
	kubectl(t, "delete", "pod", first, "-n", ns, "--wait=false")

	at := j.Progress.PagesDone
	j = awaitJob(t, base, id, "pages after the drain", 4*time.Minute, func(j job) bool { return j.Progress.PagesDone >= at+2 })
	second := workerReading(t, ns, id, first)
	t.Logf("+%v: %d/%d pages done, %s reading: kubectl delete pod %s --grace-period=0 --force", time.Since(began).Round(time.Second),
		j.Progress.PagesDone, j.Progress.PagesTotal, second, second)
	kubectl(t, "delete", "pod", second, "-n", ns, "--grace-period=0", "--force")

	j = awaitJob(t, base, id, "success", 6*time.Minute, func(j job) bool { return j.Status == "succeeded" })
	t.Logf("+%v: job %s %s, %d/%d pages, %d page errors", time.Since(began).Round(time.Second), id, j.Status,
		j.Progress.PagesDone, j.Progress.PagesTotal, len(j.PageErrors))
	if j.Progress.PagesDone != len(pages) || len(j.PageErrors) != 0 {
		t.Errorf("the job: %+v", j)
	}

	resp, err = http.Get(base + "/jobs/" + id + "/result")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var result struct {
		Pages []struct {
			Page int
			Text string
		}
	}
	if err := json.Unmarshal(b, &result); err != nil || resp.StatusCode != 200 {
		t.Fatalf("result: %d %v %.200s", resp.StatusCode, err, b)
	}
	if len(result.Pages) != len(pages) {
		t.Fatalf("%d pages in the result, want %d", len(result.Pages), len(pages))
	}
	for i, p := range result.Pages {
		if p.Page != i+1 || p.Text != result.Pages[0].Text || !strings.Contains(p.Text, "quick") {
			t.Errorf("page %d (number %d): %.80q", i+1, p.Page, p.Text)
		}
	}
}

// manifests/keda is checked by the API server against KEDA's own CustomResourceDefinition (from
// KEDA's module, E2E_KEDA_CRD), strictly: a misspelt or misplaced field fails. KEDA's operator
// itself does not run here (its images cannot be pulled on the machines this is developed on).
func scaledObjectFitsCRD(t *testing.T, ns string) {
	crd := os.Getenv("E2E_KEDA_CRD")
	if crd == "" {
		t.Fatal("E2E_KEDA_CRD is not set (hack/e2e.sh sets it)")
	}
	if exec.Command("kubectl", "get", "crd", "scaledobjects.keda.sh").Run() != nil {
		kubectl(t, "apply", "--server-side", "-f", crd)
		t.Cleanup(func() { exec.Command("kubectl", "delete", "-f", crd, "--wait=false").Run() })
		kubectl(t, "wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=60s")
	}
	out := kubectl(t, "apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "manifests/keda")
	t.Logf("kubectl apply --dry-run=server -f manifests/keda: %s", out)
	bad := exec.Command("kubectl", "apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "-")
	bad.Stdin = strings.NewReader("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: x}, triggerz: []}\n")
	if o, err := bad.CombinedOutput(); err == nil {
		t.Errorf("the CRD accepted a misspelt field: the check cannot fail: %s", o)
	}
}
