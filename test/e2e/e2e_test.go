// Package e2e deploys readocr on a real minikube the ways its users do and uses it:
//
//   - kubectl: the README's block marked `test: kubectl`, as written (hack/readme-block.sh: the
//     image built and loaded, `kubectl apply -f manifests`, `kubectl rollout status`, a page
//     and a job through `kubectl port-forward`), into a namespace that enforces the restricted
//     Pod Security Standard; real pages through the NodePort (`minikube service --url`, which
//     returns on Linux); a rolling update and a pod deletion under load with no failed request; the
//     autoscaler out under load and back in (replica counts logged); a page at the memory cap;
//     a job through the Service whose worker pod is deleted mid-job, twice (SIGTERM, then
//     SIGKILL), and which still succeeds once; KEDA's ScaledObject accepted by KEDA's CRD.
//   - Pulumi: the README's block marked `test: pulumi`, in a fresh shell (pulumi login --local,
//     the passphrase, the image, `pulumi up` of the committed minikube stack), the same checks, a preview that shows no change, `pulumi destroy` that leaves nothing.
//
// It runs from hack/e2e.sh (make e2e), which brings up or picks minikube and loads the images;
// E2E_IMAGE must be set.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/hostile"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

type env struct {
	image, nextImage string // loaded into minikube
	pulumi           bool
}

func getEnv(t *testing.T) env {
	e := env{image: os.Getenv("E2E_IMAGE"), nextImage: os.Getenv("E2E_NEXT_IMAGE"), pulumi: os.Getenv("E2E_PULUMI") == "1"}
	if e.image == "" {
		t.Skip("run through hack/e2e.sh (make e2e): E2E_IMAGE is not set")
	}
	return e
}

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func kubectl(t *testing.T, args ...string) string { t.Helper(); return run(t, "kubectl", args...) }

// namespace creates a namespace that enforces the restricted Pod Security Standard.
func namespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := fmt.Sprintf("%s-%d", prefix, time.Now().Unix()%100000)
	kubectl(t, "create", "namespace", ns)
	kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
		"pod-security.kubernetes.io/enforce-version=latest", "pod-security.kubernetes.io/warn=restricted")
	t.Cleanup(func() { exec.Command("kubectl", "delete", "namespace", ns, "--wait=true", "--timeout=180s").Run() })
	return ns
}

// serviceURL is what `minikube service readocr --url` prints, as the README has users type it.
func serviceURL(t *testing.T, ns string) string {
	t.Helper()
	out := run(t, "minikube", "service", "readocr", "-n", ns, "--url")
	url := strings.TrimSpace(strings.Split(out, "\n")[0])
	if !strings.HasPrefix(url, "http://") {
		t.Fatalf("minikube service --url printed %q", out)
	}
	return url
}

func ocr(base string, body []byte, timeout time.Duration) (int, string, error) {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Post(base+"/read_ocr", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Text  string
		Error struct{ Code string }
	}
	json.Unmarshal(b, &out)
	return resp.StatusCode, out.Text + out.Error.Code, nil
}

func jsonBody(img []byte) []byte {
	return []byte(`{"image":"` + base64.StdEncoding.EncodeToString(img) + `","lang":"eng","config":""}`)
}

// checkPages reads clean test pages through base and compares with the ground truth.
func checkPages(t *testing.T, base string) {
	t.Helper()
	for _, name := range []string{"phototest.tif", "pyt_test.jpg", "gos_001-helloworld.png"} {
		img := testimages.Get(t, name)
		var status int
		var text string
		var err error
		for range 30 { // kube-proxy may need a moment to route to new endpoints
			if status, text, err = ocr(base, jsonBody(img.Bytes), 30*time.Second); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil || status != 200 || testimages.Normalize(text) != testimages.Normalize(img.Expected) {
			t.Errorf("%s via %s: %d %v %q", name, base, status, err, text)
		}
	}
}

// load sends requests continuously until finish and counts failures.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(base string, workers int, img testimages.Image, want string) *load {
	l := &load{stop: make(chan struct{})}
	body := jsonBody(img.Bytes)
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				status, text, err := ocr(base, body, 60*time.Second)
				if err != nil || status != 200 || !strings.Contains(text, want) {
					l.failed.Add(1)
					l.mu.Lock()
					l.failures = append(l.failures, fmt.Sprintf("%s: %d %v %.60q", time.Now().Format("15:04:05.000"), status, err, text))
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		})
	}
	return l
}

func (l *load) finish() { close(l.stop); l.wg.Wait() }

// apiPods selects the API's pods (the Service's), not the workers or NATS.
const apiPods = "app.kubernetes.io/instance=readocr"

func replicas(t *testing.T, ns string) (ready, desired int) {
	t.Helper()
	out := kubectl(t, "get", "deploy/readocr", "-n", ns, "-o", "jsonpath={.status.readyReplicas} {.spec.replicas}")
	f := strings.Fields(out)
	if len(f) > 0 {
		ready, _ = strconv.Atoi(f[0])
	}
	if len(f) > 1 {
		desired, _ = strconv.Atoi(f[1])
	}
	return ready, desired
}

func waitReady(t *testing.T, ns string, n int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(time.Second) {
		if ready, _ := replicas(t, ns); ready >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d pods ready after %v: %s", n, within, kubectl(t, "get", "pods", "-n", ns, "-o", "wide"))
		}
	}
}

func TestKubectlApply(t *testing.T) {
	e := getEnv(t)
	began := time.Now()
	ns := namespace(t, "readocr-kubectl")
	// The README's steps as written (image, kubectl apply -f manifests, rollout, a page and a job
	// through kubectl port-forward), in this test's namespace (the kubeconfig's context).
	out := runBlock(t, "README.md", "kubectl", map[string]string{"KUBECONFIG": kubeconfigIn(t, ns), "READOCR_TEST_PORT": freePort(t)})
	if strings.Contains(out, "Warning: ") && strings.Contains(out, "PodSecurity") {
		t.Errorf("Pod Security warnings: %s", out)
	}
	if !strings.Contains(out, "This is a lot of 12 point text to test the") || !strings.Contains(out, "HTTP/1.1 202 Accepted") {
		t.Errorf("the README's page and job through kubectl port-forward: want the page's text and a 202, got:\n%s", tail(out, 20))
	}
	waitReady(t, ns, 2, 3*time.Minute) // the autoscaler's floor
	t.Logf("apply to %d ready pods: %v", 2, time.Since(began).Round(100*time.Millisecond))
	url := serviceURL(t, ns)
	checkPages(t, url)
	// NATS's volume is a claim the cluster's provisioner bound, not an emptyDir.
	if pvc := kubectl(t, "get", "pvc", "data-readocr-nats-0", "-n", ns, "-o", "jsonpath={.status.phase} {.spec.storageClassName}"); !strings.HasPrefix(pvc, "Bound ") {
		t.Errorf("NATS's volume: %q, want Bound", pvc)
	}

	t.Run("a job survives the deletion of its worker pod", func(t *testing.T) { jobSurvivesWorkerDeletion(t, ns, url) })
	t.Run("KEDA's ScaledObject fits KEDA's CRD", func(t *testing.T) { scaledObjectFitsCRD(t, ns) })

	t.Run("rolling update and pod deletion under load", func(t *testing.T) {
		if e.nextImage == "" {
			t.Skip("E2E_NEXT_IMAGE is not set")
		}
		l := startLoad(url, 3, testimages.Must("tjs_simple.pbm"), "Tesseract.js")
		time.Sleep(2 * time.Second)
		rollStart := time.Now()
		kubectl(t, "set", "image", "deploy/readocr", "-n", ns, "readocr="+e.nextImage)
		kubectl(t, "rollout", "status", "deploy/readocr", "-n", ns, "--timeout=300s")
		t.Logf("rolling update to %s under load: %v", e.nextImage, time.Since(rollStart).Round(100*time.Millisecond))
		pod := kubectl(t, "get", "pods", "-n", ns, "-l", apiPods, "-o", "jsonpath={.items[0].metadata.name}")
		kubectl(t, "delete", "pod", "-n", ns, pod)
		waitReady(t, ns, 2, 2*time.Minute)
		time.Sleep(3 * time.Second)
		l.finish()
		t.Logf("during the rollout and the pod deletion: %d requests ok, %d failed", l.ok.Load(), l.failed.Load())
		if l.failed.Load() > 0 || l.ok.Load() < 20 {
			t.Errorf("%d failed, %d ok: %v", l.failed.Load(), l.ok.Load(), l.failures)
		}
	})

	t.Run("the autoscaler scales out under load and back in", func(t *testing.T) {
		// metrics-server reports pod CPU about a minute after the pods start.
		for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(5 * time.Second) {
			if out, err := exec.Command("kubectl", "top", "pods", "-n", ns, "--no-headers").CombinedOutput(); err == nil && len(out) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no pod metrics: %s", kubectl(t, "get", "apiservice", "v1beta1.metrics.k8s.io"))
			}
		}
		// Scale in soon after the load ends (production keeps the default 5 minutes).
		kubectl(t, "patch", "hpa", "readocr", "-n", ns, "--type=merge", "-p",
			`{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":15}}}}`)
		hpaStart := time.Now()
		var history []string
		record := func() (int, string) {
			_, desired := replicas(t, ns)
			cpu := kubectl(t, "get", "hpa", "readocr", "-n", ns, "-o", "jsonpath={.status.currentMetrics[0].resource.current.averageUtilization}")
			history = append(history, fmt.Sprintf("+%3.0fs: %d pods, CPU %s%% of requests", time.Since(hpaStart).Seconds(), desired, cpu))
			return desired, cpu
		}
		l := startLoad(url, 4, testimages.Must("eurotext.tif"), "")
		peak := 0
		for deadline := time.Now().Add(6 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Second) {
			n, _ := record()
			peak = max(peak, n)
			if ready, _ := replicas(t, ns); ready >= 3 && n >= 3 {
				break
			}
		}
		l.finish()
		t.Logf("under load: %d ok, %d failed", l.ok.Load(), l.failed.Load())
		back := false
		for deadline := time.Now().Add(6 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Second) {
			if n, _ := record(); n == 2 {
				back = true
				break
			}
		}
		t.Logf("replicas over time:\n  %s", strings.Join(history, "\n  "))
		if peak < 3 {
			t.Errorf("the autoscaler never scaled out under load (peak %d pods)", peak)
		}
		if !back {
			t.Errorf("the autoscaler did not scale back in to 2 pods")
		}
	})

	t.Run("a page at the memory cap", func(t *testing.T) {
		// The pod's service says how it shared its memory limit out (README, Limits).
		logs := kubectl(t, "logs", "-n", ns, "deploy/readocr", "--tail=-1")
		var pageMiB int64
		sc := bufio.NewScanner(strings.NewReader(logs))
		for sc.Scan() {
			var rec struct {
				Msg     string
				PageMiB int64 `json:"page_mib"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "memory" {
				pageMiB = rec.PageMiB
			}
		}
		if pageMiB == 0 {
			t.Fatal("no memory line in the pod's log")
		}
		img, side := hostile.PageAtCap(pageMiB<<20, false)
		start := time.Now()
		status, text, err := ocr(url, jsonBody(img), 90*time.Second)
		t.Logf("a %dx%d colour page at the cap of a pod with %d MiB a page: %d %s in %v", side, side, pageMiB, status, text, time.Since(start).Round(time.Millisecond))
		if err != nil || status != 200 {
			t.Errorf("page at the cap: %d %v %q", status, err, text)
		}
		restarts := kubectl(t, "get", "pods", "-n", ns, "-l", apiPods,
			"-o", "jsonpath={range .items[*]}{.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].lastState.terminated.reason}{\"\\n\"}{end}")
		for _, l := range strings.Split(restarts, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] != "0" {
				t.Errorf("a pod restarted: %q", l)
			}
		}
	})
	t.Logf("kubectl path total: %v", time.Since(began).Round(100*time.Millisecond))
}

func TestPulumiUp(t *testing.T) {
	e := getEnv(t)
	if !e.pulumi {
		t.Skip("E2E_PULUMI is not set")
	}
	began := time.Now()
	ns := namespace(t, "readocr-pulumi")
	// The README's block as a newcomer runs it in a fresh shell: a home of its own (pulumi login
	// --local keeps its state there), no backend or passphrase in the environment, the image built
	// and loaded, the committed minikube stack; in this test's namespace (the kubeconfig's
	// context). The Go caches, minikube's home and the Pulumi CLI's plugins stay the machine's.
	home := t.TempDir()
	env := map[string]string{"HOME": home, "KUBECONFIG": kubeconfigIn(t, ns)}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		env[k] = run(t, "go", "env", k)
	}
	userHome, _ := os.UserHomeDir()
	if env["MINIKUBE_HOME"] = os.Getenv("MINIKUBE_HOME"); env["MINIKUBE_HOME"] == "" {
		env["MINIKUBE_HOME"] = filepath.Join(userHome, ".minikube")
	}
	// Plugins the CLI downloaded live in its home: keep it. Ambient plugins (on PATH, as
	// hack/pulumi.sh builds them here) need none: the new user's ~/.pulumi, as a newcomer has.
	drop := []string{"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN"}
	if os.Getenv("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION") == "true" {
		drop = append(drop, "PULUMI_HOME")
	} else if env["PULUMI_HOME"] = os.Getenv("PULUMI_HOME"); env["PULUMI_HOME"] == "" {
		env["PULUMI_HOME"] = filepath.Join(userHome, ".pulumi")
	}
	stackFile := filepath.Join(root(), "Pulumi.minikube.yaml")
	committed, err := os.ReadFile(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(stackFile, committed, 0o644) }) // stack init adds its salt
	// What the README's shell has after the block (its export of the passphrase too), for the
	// test's own pulumi commands.
	pulumiEnv := append(blockEnv(env, drop...), "PULUMI_CONFIG_PASSPHRASE=minikube")
	pulumi := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("pulumi", append(args, "--stack", "minikube", "--non-interactive")...)
		cmd.Dir, cmd.Env = root(), pulumiEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pulumi %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 30))
		}
		return string(out)
	}
	quiet := func(args ...string) {
		cmd := exec.Command("pulumi", append(args, "--stack", "minikube", "--non-interactive")...)
		cmd.Dir, cmd.Env = root(), pulumiEnv
		cmd.Run()
	}
	t.Cleanup(func() {
		quiet("destroy", "--yes", "--skip-preview", "--suppress-progress")
		quiet("stack", "rm", "--yes", "--force")
	})
	out := runBlock(t, "README.md", "pulumi", env, drop...)
	if !strings.Contains(out, "http://<node-ip>:30400") {
		t.Errorf("pulumi stack output url: want the NodePort's URL, got:\n%s", tail(out, 5))
	}
	// file://~ is the account's home (Pulumi reads it from the user database, not $HOME).
	homes := []string{home}
	if u, err := user.Current(); err == nil {
		homes = append(homes, u.HomeDir)
	}
	found := false
	for _, h := range homes {
		for _, pattern := range []string{"*minikube.json", filepath.Join("*", "minikube.json")} {
			if state, _ := filepath.Glob(filepath.Join(h, ".pulumi", "stacks", pattern)); len(state) > 0 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("pulumi login --local: no stack state under %v", homes)
	}
	t.Logf("the README's Pulumi block: %v", time.Since(began).Round(100*time.Millisecond))
	waitReady(t, ns, 2, 3*time.Minute)
	if img := kubectl(t, "get", "deploy/readocr", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}"); img != e.image {
		t.Errorf("image %s, want %s (the minikube stack's default)", img, e.image)
	}
	checkPages(t, serviceURL(t, ns))
	// A second preview changes nothing.
	if out := pulumi("preview", "--expect-no-changes", "--diff", "--suppress-progress"); strings.Contains(out, "~ ") {
		t.Errorf("preview after up shows changes:\n%s", out)
	}
	pulumi("destroy", "--yes", "--skip-preview", "--suppress-progress")
	if left := kubectl(t, "get", "all,configmap,serviceaccount,pdb,hpa,ingress,networkpolicy", "-n", ns, "-l", "app.kubernetes.io/part-of=readocr", "-o", "name"); left != "" {
		t.Errorf("left after pulumi destroy:\n%s", left)
	}
	// NATS's volume outlives the StatefulSet (Kubernetes' default retention): the jobs are data.
	if left := kubectl(t, "get", "pvc", "-n", ns, "-o", "name"); left != "persistentvolumeclaim/data-readocr-nats-0" {
		t.Errorf("volumes after pulumi destroy: %q, want NATS's, retained", left)
	}
	t.Logf("pulumi path total: %v", time.Since(began).Round(100*time.Millisecond))
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
