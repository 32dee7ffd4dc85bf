package e2e

// Day 2, scenario 3: KEDA for real. KEDA (built from the Go module proxy, installed by
// hack/offline/addons/keda) runs the ScaledObject of manifests/keda: the workers go from 0 to
// their maximum on queued pages and back to 0 when idle, with no CPU autoscaler of theirs (KEDA's
// autoscaler has only its external metric); the API keeps its CPU autoscaler. The cooldown is
// 30 s here, not 300 (as the CPU autoscaler test shortens its window); the worker pods are logged
// over time.

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// workerCount is the workers' Deployment's replicas (what KEDA set).
func workerCount(t *testing.T, ns string) string {
	t.Helper()
	out := kubectl(t, "get", "deploy/readocr-worker", "-n", ns, "-o", "jsonpath={.spec.replicas}/{.status.readyReplicas}")
	return out
}

func awaitWorkers(t *testing.T, ns string, want func(string) bool, within time.Duration, what string) time.Duration {
	t.Helper()
	began := time.Now()
	for deadline := began.Add(within); ; time.Sleep(2 * time.Second) {
		if n := workerCount(t, ns); want(n) {
			return time.Since(began)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: workers %s after %v; %s", what, workerCount(t, ns), within,
				kubectl(t, "get", "scaledobject,hpa", "-n", ns, "-o", "wide"))
		}
	}
}

func TestDay2KEDA(t *testing.T) {
	getDay2(t)
	addonBuilt(t, "keda")
	out, err := runEnv(nil, "hack/offline/addons/keda/check.sh")
	if err != nil {
		t.Fatalf("installing KEDA (hack/offline/addons/keda/check.sh): %v\n%s", err, out)
	}
	t.Logf("KEDA installed: %s", tail(out, 2))
	t.Cleanup(func() {
		removeAddon(t, "keda")
	})
	ns := namespace(t, "readocr-keda")
	kubectl(t, "apply", "-n", ns, "-f", "manifests")
	kubectl(t, "rollout", "status", "deploy/readocr", "-n", ns, "--timeout=300s")
	waitReady(t, ns, 2, 3*time.Minute)
	so := readFile(t, "manifests/keda/10-scaledobject-readocr-worker.yaml")
	so = strings.ReplaceAll(so, "readocr-nats.default.svc", "readocr-nats."+ns+".svc")
	so = strings.ReplaceAll(so, "cooldownPeriod: 300", "cooldownPeriod: 30")
	file := filepath.Join(t.TempDir(), "scaledobject.yaml")
	os.WriteFile(file, []byte(so), 0o644)
	pods := recordPods(ns, workerPods, 2*time.Second)
	kubectl(t, "apply", "-n", ns, "-f", file)
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "scaledobject/readocr-worker", "--timeout=120s")

	// KEDA took the workers' autoscaler over: its only metric is the queue, not CPU.
	metrics := func(hpa string) string {
		return kubectl(t, "get", "hpa", hpa, "-n", ns, "-o", `jsonpath={range .spec.metrics[*]}{.type}:{.resource.name}{.external.metric.name} {end}`)
	}
	for deadline := time.Now().Add(2 * time.Minute); strings.Contains(metrics("readocr-worker"), "Resource") && time.Now().Before(deadline); {
		time.Sleep(2 * time.Second)
	}
	w, a := metrics("readocr-worker"), metrics("readocr")
	t.Logf("autoscalers: readocr-worker %s(owner %s); readocr %s", w,
		kubectl(t, "get", "hpa", "readocr-worker", "-n", ns, "-o", "jsonpath={.metadata.ownerReferences[*].kind}"), a)
	if strings.Contains(w, "Resource") || !strings.Contains(w, "External") {
		t.Errorf("the workers' autoscaler has metrics %q, want KEDA's external metric only", w)
	}
	if !strings.Contains(a, "Resource:cpu") {
		t.Errorf("the API's autoscaler has metrics %q, want CPU", a)
	}

	idle := awaitWorkers(t, ns, func(n string) bool { return strings.HasPrefix(n, "0/") }, 3*time.Minute, "idle")
	t.Logf("idle: workers at 0 after %v", idle.Round(time.Second))

	// Pages waiting: 30 jobs of a 4-tile page, a few seconds of OCR each: enough for the second
	// worker to come (a second run with 12 saw the first worker finish them all before the
	// autoscaler's next look).
	const queuedJobs = 30
	img := testimages.Tiled(t, testimages.Must("eurotext.tif"), 2)
	body := []byte(`{"image":"` + base64.StdEncoding.EncodeToString(img) + `","lang":"eng"}`)
	url := serviceURL(t, ns)
	queued := time.Now()
	var ids []string
	for i := range queuedJobs {
		id, status, err := submitJob(url, fmt.Sprintf("keda-%d-%d", queued.UnixNano(), i), body)
		if err != nil {
			t.Fatalf("POST /jobs: %d %v", status, err)
		}
		ids = append(ids, id)
	}
	first := awaitWorkers(t, ns, func(n string) bool { return !strings.HasPrefix(n, "0/") && !strings.HasSuffix(n, "/") }, 2*time.Minute, "the first worker")
	t.Logf("%d jobs queued: a worker ready %v after", queuedJobs, first.Round(time.Second))
	peak := awaitWorkers(t, ns, func(n string) bool { return strings.HasPrefix(n, "2/") }, 2*time.Minute, "two workers")
	t.Logf("2 workers (the maximum) %v after", peak.Round(time.Second))
	for _, id := range ids {
		awaitJob(t, url, id, "success", 5*time.Minute, func(j job) bool { return j.Status == "succeeded" })
	}
	done := time.Since(queued)
	t.Logf("the %d jobs succeeded %v after they were queued", queuedJobs, done.Round(time.Second))
	back := awaitWorkers(t, ns, func(n string) bool { return strings.HasPrefix(n, "0/") }, 4*time.Minute, "back to idle")
	t.Logf("workers back at 0 %v after the last job (cooldown 30 s)", back.Round(time.Second))
	t.Logf("worker pods over time:\n  %s", strings.Join(pods.finish(), "\n  "))
	t.Logf("API pods (its CPU autoscaler's floor): %s", kubectl(t, "get", "deploy/readocr", "-n", ns, "-o", "jsonpath={.status.readyReplicas}"))
}

// removeAddon deletes what hack/offline/addons/<name>/manifest.sh installed and waits for it to
// go, so that the next scenario has the node's CPU (TestDay2Sizing adds it up). From the
// repository's root: run from the package's directory, the script was not found and the
// add-ons stayed for the rest of the run.
func removeAddon(t *testing.T, name string) {
	t.Helper()
	out, err := runEnv(nil, "bash", "-c", "hack/offline/addons/"+name+"/manifest.sh | kubectl delete --ignore-not-found --wait=true --timeout=180s -f -")
	if err != nil {
		t.Errorf("removing %s: %v\n%s", name, err, out)
	}
}
