package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"regexp"
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
	Error *struct{ Code, Message string }
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

// workerRunning is the worker pod whose log says it started attempt n of the job.
func workerRunning(t *testing.T, ns, id string, n int) string {
	t.Helper()
	re := regexp.MustCompile(`^\[pod/([^/]+)/[^]]+\] .*"msg":"job started","job":"` + id + `","attempt":` + fmt.Sprint(n) + `\b`)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		out, _ := exec.Command("kubectl", "logs", "-n", ns, "-l", "app.kubernetes.io/instance=readocr-worker",
			"--prefix", "--tail=-1", "--max-log-requests=10").CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		}
	}
	t.Fatalf("no worker pod logged attempt %d of job %s", n, id)
	return ""
}

// A 16-page scanned PDF (about 40 s of OCR on one worker) queued through the Service. Its worker
// pod is deleted mid-job as a scale-in or a drain deletes it (SIGTERM: the pod gives the job
// back when its shutdown time is up), then the next one is killed outright (no goodbye: JetStream
// redelivers after the ack wait). The job still succeeds, with every page, once.
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

	running := func(attempt int) func(job) bool {
		return func(j job) bool { return j.Status == "running" && j.Attempts >= attempt && j.Progress.PagesDone >= 1 }
	}
	j := awaitJob(t, base, id, "page 1 done", 3*time.Minute, running(1))
	first := workerRunning(t, ns, id, 1)
	t.Logf("+%v: %d/%d pages done on %s: kubectl delete pod %s", time.Since(began).Round(time.Second), j.Progress.PagesDone, j.Progress.PagesTotal, first, first)
	kubectl(t, "delete", "pod", first, "-n", ns, "--wait=false")

	j = awaitJob(t, base, id, "the second attempt", 4*time.Minute, running(2))
	second := workerRunning(t, ns, id, 2)
	if second == first {
		t.Errorf("attempt 2 ran on the deleted pod %s", first)
	}
	t.Logf("+%v: attempt %d on %s, %d/%d pages done: kubectl delete pod %s --grace-period=0 --force", time.Since(began).Round(time.Second),
		j.Attempts, second, j.Progress.PagesDone, j.Progress.PagesTotal, second)
	kubectl(t, "delete", "pod", second, "-n", ns, "--grace-period=0", "--force")

	j = awaitJob(t, base, id, "success", 6*time.Minute, func(j job) bool { return j.Status == "succeeded" })
	t.Logf("+%v: job %s %s after %d attempts", time.Since(began).Round(time.Second), id, j.Status, j.Attempts)
	if j.Attempts != 3 {
		t.Errorf("attempts %d, want 3 (deleted, killed, done)", j.Attempts)
	}
	if third := workerRunning(t, ns, id, 3); third == first || third == second {
		t.Errorf("attempt 3 on %s, a deleted pod", third)
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
