package e2e

// Access control on the cluster (issue 21), with kube-router enforcing NetworkPolicy
// (hack/offline/addons/kube-router): hack/e2e.sh runs this test last, on its own, because the
// policies then hold for every namespace after it.
//
//   - Keys off: the plain manifests serve without a key, and say so (/readyz, the start log).
//   - The network: a pod outside readocr cannot reach NATS or the admin port; a worker cannot
//     reach 169.254.169.254 or a private address, both made local first (a dummy interface on
//     the node holding them, with this test's listeners behind: a failing policy sends nothing
//     off the machine), which a pod without policies does reach; the service still works.
//   - Keys on: a Pulumi stack with keys (made from its secret seed) and NATS's user: 401
//     without a key, a page quota reached (429 with its headers), another key's job hidden,
//     and a NATS client without credentials refused (the Go client, through a port-forward).

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// The addresses made local on the node: the cloud metadata service and a private address.
const (
	metadataIP = "169.254.169.254"
	privateIP  = "10.255.255.1"
	probePort  = 8080 // outside the NodePort range, which kube-router always lets in
	dummyLink  = "readocr-e2e"
)

func kubeRouterImage(t *testing.T) string {
	t.Helper()
	return run(t, filepath.Join(root(), "hack", "offline", "addons", "kube-router", "build.sh"))
}

// enforce installs kube-router as the cluster's NetworkPolicy agent, if it is not there.
func enforce(t *testing.T) {
	t.Helper()
	if exec.Command("kubectl", "get", "ds", "kube-router", "-n", "kube-system").Run() == nil {
		return
	}
	cmd := exec.Command("bash", "-c", "hack/offline/addons/kube-router/manifest.sh | kubectl apply -f -")
	cmd.Dir = root()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing kube-router: %v\n%s", err, out)
	}
	kubectl(t, "rollout", "status", "ds/kube-router", "-n", "kube-system", "--timeout=180s")
}

// listeners makes ips local on the node (a dummy interface) and listens on each; the returned
// counters count the connections each accepted.
func listeners(t *testing.T, ips ...string) map[string]*atomic.Int64 {
	t.Helper()
	exec.Command("ip", "link", "del", dummyLink).Run()
	ipCmd := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	// A dummy interface, or loopback where the kernel has no dummy driver (this machine's).
	dev := dummyLink
	if exec.Command("ip", "link", "add", dummyLink, "type", "dummy").Run() == nil {
		t.Cleanup(func() { exec.Command("ip", "link", "del", dummyLink).Run() })
	} else {
		dev = "lo"
	}
	for _, ip := range ips {
		ipCmd("addr", "add", ip+"/32", "dev", dev)
		t.Cleanup(func() { exec.Command("ip", "addr", "del", ip+"/32", "dev", dev).Run() })
	}
	ipCmd("link", "set", dev, "up")
	counts := map[string]*atomic.Int64{}
	for _, ip := range ips {
		l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, probePort))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		n := &atomic.Int64{}
		counts[ip] = n
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				n.Add(1)
				c.Close()
			}
		}()
	}
	return counts
}

// canConnect says whether container c of pod (in ns) opens a TCP connection to host:port
// within 3 s (bash's /dev/tcp).
func canConnect(ns, pod, c, host string, port int) bool {
	args := []string{"exec", "-n", ns, pod}
	if c != "" {
		args = append(args, "-c", c)
	}
	args = append(args, "--", "timeout", "3", "bash", "-c", fmt.Sprintf("</dev/tcp/%s/%d", host, port))
	return exec.Command("kubectl", args...).Run() == nil
}

// probeIn adds an ephemeral container with bash (kube-router's image) to pod: it shares the
// pod's network, and so its policies.
func probeIn(t *testing.T, ns, pod, image string) string {
	t.Helper()
	kubectl(t, "debug", "-n", ns, "pod/"+pod, "--image="+image, "--image-pull-policy=IfNotPresent",
		"--profile=restricted", "-c", "probe", "--", "sleep", "3600")
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		st := kubectl(t, "get", "pod", pod, "-n", ns, "-o", `jsonpath={.status.ephemeralContainerStatuses[?(@.name=="probe")].state.running.startedAt}`)
		if st != "" {
			return "probe"
		}
		if time.Now().After(deadline) {
			t.Fatalf("the probe container did not start: %s", kubectl(t, "describe", "pod", pod, "-n", ns))
		}
	}
}

// outsider is a pod with bash in a namespace of its own, with no policy.
func outsider(t *testing.T, image string) (ns, pod string) {
	t.Helper()
	ns = fmt.Sprintf("outsider-%d", time.Now().Unix()%100000)
	kubectl(t, "create", "namespace", ns)
	t.Cleanup(func() { exec.Command("kubectl", "delete", "namespace", ns, "--wait=false").Run() })
	kubectl(t, "run", "probe", "-n", ns, "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never",
		"--command", "--", "sleep", "3600")
	kubectl(t, "wait", "-n", ns, "--for=condition=Ready", "pod/probe", "--timeout=90s")
	return ns, "probe"
}

func TestAccess(t *testing.T) {
	e := getEnv(t)
	if os.Getenv("E2E_ACCESS") != "1" {
		t.Skip("E2E_ACCESS is not set: hack/e2e.sh runs this test last, on its own (it installs kube-router)")
	}
	began := time.Now()
	image := kubeRouterImage(t)

	// Keys off: the plain manifests.
	ns := namespace(t, "readocr-open")
	kubectl(t, "apply", "-n", ns, "-f", "manifests")
	for _, d := range []string{"readocr", "readocr-worker"} {
		kubectl(t, "rollout", "status", "deploy/"+d, "-n", ns, "--timeout=300s")
	}
	waitReady(t, ns, 2, 3*time.Minute)
	url := serviceURL(t, ns)
	checkPages(t, url)
	if auth := readyzAuth(t, url, ""); auth != "none" {
		t.Errorf("/readyz of the plain manifests: auth %q, want none", auth)
	}
	if logs := kubectl(t, "logs", "-n", ns, "deploy/readocr", "--tail=-1"); !strings.Contains(logs, "API keys off") {
		t.Error("the plain manifests' service does not say at start that it is open")
	}

	enforce(t)
	t.Logf("kube-router enforcing after %v", time.Since(began).Round(time.Second))
	t.Run("the network", func(t *testing.T) { networkPolicies(t, ns, url, image) })
	t.Run("keys on, with a Pulumi stack", func(t *testing.T) {
		if !e.pulumi {
			t.Skip("E2E_PULUMI is not set")
		}
		keysOn(t)
	})
	t.Logf("access total: %v", time.Since(began).Round(time.Second))
}

func networkPolicies(t *testing.T, ns, url, image string) {
	counts := listeners(t, metadataIP, privateIP)
	natsHost := "readocr-nats." + ns + ".svc.cluster.local"
	outNS, out := outsider(t, image)
	// The outsider (no policy of its own) reaches the local addresses: the routes and listeners
	// work, so what stops the worker below is its policy.
	for _, ip := range []string{metadataIP, privateIP} {
		if !canConnect(outNS, out, "", ip, probePort) || counts[ip].Load() == 0 {
			t.Fatalf("a pod without policies cannot reach %s:%d on the node (%d accepted): the check would prove nothing", ip, probePort, counts[ip].Load())
		}
	}
	worker := kubectl(t, "get", "pods", "-n", ns, "-l", "app.kubernetes.io/instance=readocr-worker", "-o", "jsonpath={.items[0].metadata.name}")
	api := kubectl(t, "get", "pods", "-n", ns, "-l", apiPods, "-o", "jsonpath={.items[0].metadata.name}")
	apiIP := kubectl(t, "get", "pod", api, "-n", ns, "-o", "jsonpath={.status.podIP}")
	probe := probeIn(t, ns, worker, image)
	// kube-router writes a new pod's rules within seconds of seeing it.
	for deadline := time.Now().Add(90 * time.Second); canConnect(outNS, out, "", natsHost, 4222); time.Sleep(3 * time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("an outsider still reaches NATS 90 s after kube-router started: policies not enforced")
		}
	}
	// Allowed: NATS, and the Service port from anywhere.
	if !canConnect(ns, worker, probe, natsHost, 4222) {
		t.Error("a worker cannot reach NATS")
	}
	if !canConnect(outNS, out, "", apiIP, 4000) {
		t.Error("a pod of another namespace cannot reach the API's port 4000")
	}
	// Refused.
	for _, c := range []struct {
		what, ns, pod, c, host string
		port                   int
	}{
		{"an outsider -> NATS", outNS, out, "", natsHost, 4222},
		{"an outsider -> the API's admin port", outNS, out, "", apiIP, 9090},
		{"a worker -> the metadata address", ns, worker, probe, metadataIP, probePort},
		{"a worker -> a private address", ns, worker, probe, privateIP, probePort},
	} {
		before := counts[c.host]
		var n0 int64
		if before != nil {
			n0 = before.Load()
		}
		got := canConnect(c.ns, c.pod, c.c, c.host, c.port)
		t.Logf("%s (%s:%d): connects %v", c.what, c.host, c.port, got)
		if got || (before != nil && before.Load() != n0) {
			t.Errorf("%s: connected", c.what)
		}
	}
	// The monitoring namespace reads the admin port.
	exec.Command("kubectl", "create", "namespace", "monitoring").Run()
	kubectl(t, "run", "scraper", "-n", "monitoring", "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never",
		"--command", "--", "sleep", "3600")
	t.Cleanup(func() { exec.Command("kubectl", "delete", "pod", "scraper", "-n", "monitoring", "--wait=false").Run() })
	kubectl(t, "wait", "-n", "monitoring", "--for=condition=Ready", "pod/scraper", "--timeout=90s")
	if !canConnect("monitoring", "scraper", "", apiIP, 9090) {
		t.Error("the monitoring namespace cannot reach the admin port")
	}
	// The service still works: pages through the Service, and a job through NATS.
	checkPages(t, url)
	id := postJob(t, url, "", testimages.Must("phototest.tif").Bytes)
	awaitJob(t, url, id, "the job's end", 2*time.Minute, func(j job) bool { return j.Status == "succeeded" })
	t.Logf("under the policies: pages read, job %s succeeded; listeners accepted %d (metadata) and %d (private), all from the outsider",
		id, counts[metadataIP].Load(), counts[privateIP].Load())
}

func readyzAuth(t *testing.T, url, key string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/readyz", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Auth string }
	json.NewDecoder(resp.Body).Decode(&r)
	return r.Auth
}

// call sends a request with key (none when empty) and returns the status, headers and body.
func call(t *testing.T, method, url, key string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func postJob(t *testing.T, url, key string, img []byte) string {
	t.Helper()
	status, _, body := call(t, "POST", url+"/jobs", key, []byte(`{"image":"`+base64.StdEncoding.EncodeToString(img)+`"}`))
	var j job
	json.Unmarshal([]byte(body), &j)
	if status != http.StatusAccepted || j.ID == "" {
		t.Fatalf("POST /jobs: %d %s", status, body)
	}
	return j.ID
}

func keysOn(t *testing.T) {
	began := time.Now()
	ns := namespace(t, "readocr-keys")
	pulumi := pulumiStack(t, ns)
	pulumi("config", "set", "--secret", "readocr:secretSeed", "e2e-seed-"+fmt.Sprint(time.Now().UnixNano()))
	pulumi("config", "set", "--path", "readocr:apiKeys[0].id", "small") // as the README says
	pulumi("config", "set", "--path", "readocr:apiKeys[0].scopes[0]", "ocr")
	pulumi("config", "set", "--path", "readocr:apiKeys[0].scopes[1]", "jobs")
	pulumi("config", "set", "--path", "readocr:apiKeys[0].pages", "3")
	pulumi("config", "set", "--path", "readocr:apiKeys[0].period", "1h")
	pulumi("config", "set", "--path", "readocr:apiKeys[1].id", "other")
	pulumi("config", "set", "--path", "readocr:apiKeys[1].scopes[0]", "ocr")
	pulumi("config", "set", "--path", "readocr:apiKeys[1].scopes[1]", "jobs")
	pulumi("config", "set", "readocr:natsAuth", "generated")
	pulumi("config", "set", "readocr:natsTLS", "generated") // as staging and production
	// The network part's deployment still holds NodePort 30400: let Kubernetes choose this one
	// (serviceURL asks minikube for the port).
	pulumi("config", "set", "readocr:nodePort", "0")
	pulumi("up", "--yes", "--skip-preview", "--suppress-progress")
	t.Cleanup(func() { exec.Command("kubectl", "delete", "namespace", ns, "--wait=false").Run() })
	for _, d := range []string{"readocr", "readocr-worker"} {
		kubectl(t, "rollout", "status", "deploy/"+d, "-n", ns, "--timeout=300s")
	}
	waitReady(t, ns, 2, 3*time.Minute)
	t.Logf("pulumi up with keys and NATS's user: %v", time.Since(began).Round(time.Second))
	var keys map[string]string
	if err := json.Unmarshal([]byte(pulumi("stack", "output", "apiKeys", "--show-secrets", "--json")), &keys); err != nil || keys["small"] == "" || keys["other"] == "" {
		t.Fatalf("apiKeys output: %v %v", err, keys)
	}
	if out := pulumi("stack", "output", "apiKeys", "--json"); strings.Contains(out, keys["small"]) {
		t.Error("the keys show without --show-secrets")
	}
	url := serviceURL(t, ns)
	if auth := readyzAuth(t, url, ""); auth != "api_keys" {
		t.Errorf("/readyz: auth %q, want api_keys", auth)
	}
	page := jsonBody(testimages.Must("phototest.tif").Bytes)
	if status, _, body := call(t, "POST", url+"/read_ocr", "", page); status != 401 || !strings.Contains(body, `"error"`) {
		t.Errorf("no key: %d %s, want a 401 JSON error", status, body)
	}
	if status, _, body := call(t, "POST", url+"/read_ocr", "readocr_"+strings.Repeat("x", 43), page); status != 401 {
		t.Errorf("an unknown key: %d %s, want 401", status, body)
	}
	// The quota: three pages, then 429 with Retry-After and the RateLimit headers.
	var refused bool
	for i := 1; i <= 5 && !refused; i++ {
		status, h, body := call(t, "POST", url+"/read_ocr", keys["small"], page)
		t.Logf("page %d with key small: %d RateLimit %q RateLimit-Policy %q Retry-After %q", i, status, h.Get("RateLimit"), h.Get("RateLimit-Policy"), h.Get("Retry-After"))
		switch {
		case status == 200 && i <= 3:
		case status == 429 && i == 4:
			refused = true
			if h.Get("Retry-After") == "" || h.Get("RateLimit") == "" || h.Get("RateLimit-Policy") == "" || !strings.Contains(body, `"error"`) {
				t.Errorf("429 without its headers or JSON: %v %s", h, body)
			}
		default:
			t.Errorf("page %d with a 3-page quota: %d %.200s", i, status, body)
		}
	}
	if !refused {
		t.Error("the quota was never reached")
	}
	// Another key's job is hidden (404); its own key sees it.
	id := postJob(t, url, keys["other"], testimages.Must("phototest.tif").Bytes)
	for _, p := range []string{"", "/result"} {
		if status, _, body := call(t, "GET", url+"/jobs/"+id+p, keys["small"], nil); status != 404 {
			t.Errorf("GET /jobs/%s%s with another key: %d %s, want 404", id, p, status, body)
		}
	}
	if status, _, _ := call(t, "DELETE", url+"/jobs/"+id, keys["small"], nil); status != 404 {
		t.Errorf("DELETE another key's job: %d, want 404", status)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		status, _, body := call(t, "GET", url+"/jobs/"+id, keys["other"], nil)
		if status == 200 && strings.Contains(body, `"succeeded"`) {
			break // a worker ran it: the workers reach NATS over TLS with the generated user
		}
		if status != 200 || time.Now().After(deadline) || strings.Contains(body, `"failed"`) {
			t.Fatalf("the job with its own key: %d %s", status, body)
		}
	}
	natsRefusesAnonymous(t, ns)
	pulumi("destroy", "--yes", "--skip-preview", "--suppress-progress")
}

// natsRefusesAnonymous connects the Go NATS client to the stack's NATS (a port-forward: the
// policy admits only readocr's pods): without TLS, then over TLS (the Secret's CA, the
// Service's name) without credentials, then with the Secret's.
func natsRefusesAnonymous(t *testing.T, ns string) {
	secret := func(name, key string) string {
		b, _ := base64.StdEncoding.DecodeString(kubectl(t, "get", "secret", name, "-n", ns, "-o", "jsonpath={.data."+strings.ReplaceAll(key, ".", `\.`)+"}"))
		return string(b)
	}
	// The plain client: nats.go takes up TLS when the server demands it, and then cannot
	// verify the server (it trusts only the system's CAs): either way it is not let in.
	if nc, err := natsThroughForward(t, ns, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("a NATS client without the CA was let in")
	} else {
		t.Logf("a NATS client without the CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(secret("readocr-nats-tls", "ca.crt"))) {
		t.Fatal("no CA in the Secret readocr-nats-tls")
	}
	secure := nats.Secure(&tls.Config{ServerName: "readocr-nats", RootCAs: pool, MinVersion: tls.VersionTLS12})
	nc, err := natsThroughForward(t, ns, secure, nats.Timeout(5*time.Second))
	t.Logf("a NATS client over TLS without credentials: %v", err)
	if err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("a NATS client without credentials: %v, want Authorization Violation", err)
		if nc != nil {
			nc.Close()
		}
	}
	u, p := secret("readocr-nats-auth", "OCR_NATS_USER"), secret("readocr-nats-auth", "OCR_NATS_PASSWORD")
	nc, err = natsThroughForward(t, ns, secure, nats.UserInfo(u, p))
	if err != nil {
		t.Errorf("the service's way (TLS, its credentials): %v", err)
	} else {
		t.Logf("the service's way (TLS, its credentials): connected, TLS %v", nc.TLSRequired())
		nc.Close()
	}
}

// natsThroughForward connects to the stack's NATS through a port-forward of its own: kubectl
// port-forward exits after a connection the server closed (a refused client), so each client
// gets a fresh one.
func natsThroughForward(t *testing.T, ns string, opts ...nats.Option) (*nats.Conn, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pf := exec.Command("kubectl", "port-forward", "-n", ns, "svc/readocr-nats", fmt.Sprintf("%d:4222", port))
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pf.Process.Kill(); pf.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for range 30 {
		var c net.Conn
		if c, err = net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("port-forward: %v", err)
	}
	return nats.Connect("nats://"+addr, append(opts, nats.MaxReconnects(0))...)
}
