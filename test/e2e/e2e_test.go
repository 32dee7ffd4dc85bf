// Package e2e deploys readocr on a real Kubernetes cluster and uses it: `kubectl apply -f
// manifests` into a namespace that enforces the restricted Pod Security Standard, reads real
// pages through the Service, rolls out a new image and deletes a pod under load (no request may
// fail), then deploys the same workload with `pulumi up` and destroys it.
//
// It runs only from hack/e2e.sh (make e2e), which brings up or picks the cluster and loads the
// images; E2E_IMAGE must be set.
package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

type env struct {
	image, nextImage string // loaded into the cluster
	nodeIP           string // where NodePorts answer
	clusterIPs       bool   // this host routes Service ClusterIPs (it is the node)
	pulumi           bool
}

func getEnv(t *testing.T) env {
	e := env{image: os.Getenv("E2E_IMAGE"), nextImage: os.Getenv("E2E_NEXT_IMAGE"), nodeIP: os.Getenv("E2E_NODE_IP"),
		clusterIPs: os.Getenv("E2E_CLUSTERIP") == "1", pulumi: os.Getenv("E2E_PULUMI") == "1"}
	if e.image == "" || e.nodeIP == "" {
		t.Skip("run through hack/e2e.sh (make e2e): E2E_IMAGE and E2E_NODE_IP are not set")
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
	t.Cleanup(func() { exec.Command("kubectl", "delete", "namespace", ns, "--wait=true", "--timeout=120s").Run() })
	return ns
}

func ocr(base string, body []byte) (int, string, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(base+"/read_ocr", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ Text string }
	json.Unmarshal(b, &out)
	return resp.StatusCode, out.Text, nil
}

func jsonBody(img []byte) []byte {
	return []byte(`{"image":"` + base64.StdEncoding.EncodeToString(img) + `","lang":"eng","config":""}`)
}

// checkPages reads every clean test page through base and compares with the ground truth.
func checkPages(t *testing.T, base string) {
	t.Helper()
	for _, name := range []string{"phototest.tif", "pyt_test.jpg", "gos_001-helloworld.png"} {
		img := testimages.Get(t, name)
		var status int
		var text string
		var err error
		for i := 0; i < 20; i++ { // the Service may need a moment to route to new endpoints
			if status, text, err = ocr(base, jsonBody(img.Bytes)); err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil || status != 200 || testimages.Normalize(text) != testimages.Normalize(img.Expected) {
			t.Errorf("%s via %s: %d %v %q", name, base, status, err, text)
		}
	}
}

func serviceURLs(t *testing.T, e env, ns string) []string {
	t.Helper()
	nodePort := kubectl(t, "get", "svc", "readocr", "-n", ns, "-o", "jsonpath={.spec.ports[0].nodePort}")
	urls := []string{"http://" + e.nodeIP + ":" + nodePort}
	if e.clusterIPs {
		urls = append(urls, "http://"+kubectl(t, "get", "svc", "readocr", "-n", ns, "-o", "jsonpath={.spec.clusterIP}")+":4000")
	}
	return urls
}

// load sends requests continuously until stop is closed and counts failures.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(base string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	body := jsonBody(testimages.Must("tjs_simple.pbm").Bytes)
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				status, text, err := ocr(base, body)
				if err != nil || status != 200 || !strings.Contains(text, "Tesseract.js") {
					l.failed.Add(1)
					l.mu.Lock()
					l.failures = append(l.failures, fmt.Sprintf("%s: %d %v", time.Now().Format("15:04:05.000"), status, err))
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

func TestKubectlApply(t *testing.T) {
	e := getEnv(t)
	began := time.Now()
	ns := namespace(t, "readocr-kubectl")
	out := kubectl(t, "apply", "-n", ns, "-f", "manifests")
	t.Logf("kubectl apply -f manifests:\n%s", out)
	if strings.Contains(out, "Warning") {
		t.Errorf("Pod Security warnings: %s", out)
	}
	kubectl(t, "rollout", "status", "deploy/readocr", "-n", ns, "--timeout=180s")
	t.Logf("rollout of 3 replicas: %v", time.Since(began).Round(100*time.Millisecond))
	urls := serviceURLs(t, e, ns)
	for _, u := range urls {
		checkPages(t, u)
	}

	if e.nextImage == "" {
		return
	}
	// Under continuous load: roll out a new image version, then delete a pod. Nothing may fail.
	l := startLoad(urls[0], 3)
	time.Sleep(2 * time.Second)
	rollStart := time.Now()
	kubectl(t, "set", "image", "deploy/readocr", "-n", ns, "readocr="+e.nextImage)
	kubectl(t, "rollout", "status", "deploy/readocr", "-n", ns, "--timeout=300s")
	t.Logf("rolling update to %s under load: %v", e.nextImage, time.Since(rollStart).Round(100*time.Millisecond))
	pod := kubectl(t, "get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=readocr", "-o", "jsonpath={.items[0].metadata.name}")
	kubectl(t, "delete", "pod", "-n", ns, pod)
	kubectl(t, "wait", "deploy/readocr", "-n", ns, "--for=condition=Available", "--timeout=120s")
	for kubectl(t, "get", "deploy/readocr", "-n", ns, "-o", "jsonpath={.status.readyReplicas}") != "3" {
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	l.finish()
	t.Logf("during rollout and pod deletion: %d requests ok, %d failed", l.ok.Load(), l.failed.Load())
	if l.failed.Load() > 0 || l.ok.Load() < 20 {
		t.Errorf("%d failed, %d ok: %v", l.failed.Load(), l.ok.Load(), l.failures)
	}
	if img := kubectl(t, "get", "deploy/readocr", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}"); img != e.nextImage {
		t.Errorf("image after rollout %s", img)
	}
	t.Logf("kubectl path total: %v", time.Since(began).Round(100*time.Millisecond))
}

func TestPulumiUp(t *testing.T) {
	e := getEnv(t)
	if !e.pulumi {
		t.Skip("E2E_PULUMI is not set")
	}
	began := time.Now()
	ns := namespace(t, "readocr-pulumi")
	work := t.TempDir()
	stackCfg := filepath.Join(work, "Pulumi.e2e.yaml")
	os.Setenv("PULUMI_BACKEND_URL", "file://"+work)
	pulumi := func(args ...string) string {
		t.Helper()
		return run(t, "pulumi", append(args, "--stack", "e2e", "--non-interactive", "--config-file", stackCfg)...)
	}
	run(t, "pulumi", "stack", "init", "e2e", "--non-interactive")
	// stack init writes the passphrase salt next to Pulumi.yaml.
	t.Cleanup(func() { os.Remove(filepath.Join(root(), "Pulumi.e2e.yaml")) })
	pulumi("config", "set", "readocr:namespace", ns)
	pulumi("config", "set", "readocr:image", e.image)
	out := pulumi("up", "--yes", "--skip-preview", "--suppress-progress")
	t.Logf("pulumi up: %v\n%s", time.Since(began).Round(100*time.Millisecond), tail(out, 15))
	if ready := kubectl(t, "get", "deploy/readocr", "-n", ns, "-o", "jsonpath={.status.readyReplicas}"); ready != "3" {
		t.Errorf("ready replicas after pulumi up: %q", ready)
	}
	url := run(t, "pulumi", "stack", "output", "url", "--stack", "e2e", "--non-interactive")
	if !strings.Contains(url, "30400") {
		t.Errorf("stack output url %q", url)
	}
	for _, u := range serviceURLs(t, e, ns) {
		checkPages(t, u)
	}
	// A second up changes nothing.
	if out := pulumi("preview", "--diff", "--suppress-progress"); !strings.Contains(out, "unchanged") || strings.Contains(out, "~ ") {
		t.Errorf("preview after up shows changes:\n%s", out)
	}
	pulumi("destroy", "--yes", "--skip-preview", "--suppress-progress")
	if left := kubectl(t, "get", "all,configmap,serviceaccount,pdb,hpa", "-n", ns, "-l", "app.kubernetes.io/name=readocr", "-o", "name"); left != "" {
		t.Errorf("left after pulumi destroy:\n%s", left)
	}
	run(t, "pulumi", "stack", "rm", "e2e", "--yes", "--non-interactive")
	t.Logf("pulumi path total: %v", time.Since(began).Round(100*time.Millisecond))
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
