package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// webhookCall is one delivery the receiver got.
type webhookCall struct {
	from   string // the sender's address: a worker pod's IP
	header http.Header
	body   []byte
}

// holdingReceiver records every delivery and holds the first one open until release is closed,
// then answers it 503; later ones get 204. It listens on the node's address (this host), where
// pods reach it.
type holdingReceiver struct {
	url     string
	mu      sync.Mutex
	calls   []webhookCall
	first   chan struct{}
	release chan struct{}
}

func newHoldingReceiver(t *testing.T, host string) *holdingReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	r := &holdingReceiver{url: "http://" + ln.Addr().String() + "/done", first: make(chan struct{}), release: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		from, _, _ := net.SplitHostPort(req.RemoteAddr)
		r.mu.Lock()
		r.calls = append(r.calls, webhookCall{from, req.Header.Clone(), b})
		n := len(r.calls)
		r.mu.Unlock()
		if n == 1 {
			close(r.first)
			select { // the sender is killed meanwhile: this answer goes nowhere
			case <-r.release:
			case <-req.Context().Done():
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// Issue 21 on minikube: a job's callback is delivered after the worker process that finished
// the job, and was delivering it, is killed (SIGKILL from the node) while the receiver holds
// the first attempt. The delivery waits in JetStream's outbox and another process makes it: the
// receiver gets it with the same webhook-id, signed (Standard Webhooks, checked with the
// standard's own library), and the job's record says delivered on the second attempt.
//
// The receiver is on the node, a private address: the deployment is told to allow private
// URLs (OCR_ALLOW_PRIVATE_URLS), and this runs before kube-router enforces the workers' egress
// policy, which denies private ranges (TestAccess proves that).
func TestDay2CallbackAfterKill(t *testing.T) {
	getDay2(t)
	ns := namespace(t, "readocr-callback")
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	// The Secret docs/kubernetes.md tells users to make: the workers sign with it.
	kubectl(t, "create", "secret", "generic", "readocr-webhook", "-n", ns, "--from-literal=OCR_WEBHOOK_SECRET="+secret)
	kubectl(t, "apply", "-n", ns, "-f", "manifests")
	kubectl(t, "delete", "hpa", "readocr-worker", "-n", ns)
	kubectl(t, "set", "env", "-n", ns, "deploy/readocr", "deploy/readocr-worker", "OCR_ALLOW_PRIVATE_URLS=true")
	kubectl(t, "rollout", "status", "deploy/readocr", "-n", ns, "--timeout=300s")
	setWorkers(t, ns, 2)
	url := serviceURL(t, ns)
	node := kubectl(t, "get", "nodes", "-o", `jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}`)
	rcv := newHoldingReceiver(t, node)
	defer close(rcv.release)

	page := testimages.Must("gos_001-helloworld.png").Bytes
	body := `{"image":"` + base64.StdEncoding.EncodeToString(page) + `","callback_url":"` + rcv.url + `"}`
	resp, err := http.Post(url+"/jobs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var queued job
	json.NewDecoder(resp.Body).Decode(&queued)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /jobs with a callback: %d", resp.StatusCode)
	}
	select {
	case <-rcv.first:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no delivery to %s: %+v", rcv.url, getJob(t, url, queued.ID))
	}
	rcv.mu.Lock()
	from := rcv.calls[0].from
	rcv.mu.Unlock()
	sender := kubectl(t, "get", "pods", "-n", ns, "-l", workerPods, "-o",
		`jsonpath={range .items[?(@.status.podIP=="`+from+`")]}{.metadata.name}{end}`)
	if sender == "" {
		t.Fatalf("the first delivery came from %s, no worker pod's address: %s", from, kubectl(t, "get", "pods", "-n", ns, "-o", "wide"))
	}
	began := time.Now()
	killContainer(t, ns, sender)
	t.Logf("job %s: the first delivery, from %s (%s), held; %s killed", queued.ID, sender, from, sender)

	var got struct {
		Status   string
		Callback struct {
			State    string
			Attempts int
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); got.Callback.State != "delivered"; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered after the kill: %+v", got)
		}
		if r, err := http.Get(url + "/jobs/" + queued.ID); err == nil {
			json.NewDecoder(r.Body).Decode(&got)
			r.Body.Close()
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	second := rcv.calls[len(rcv.calls)-1]
	by := kubectl(t, "get", "pods", "-n", ns, "-l", workerPods, "-o",
		`jsonpath={range .items[?(@.status.podIP=="`+second.from+`")]}{.metadata.name} (restarts {.status.containerStatuses[0].restartCount}){end}`)
	t.Logf("delivered %.1f s after the kill, by %s; the job's record: %s, callback %+v", time.Since(began).Seconds(), by, got.Status, got.Callback)
	if len(rcv.calls) != 2 || got.Callback.Attempts != 2 || got.Status != "succeeded" {
		t.Errorf("%d deliveries (want 2), record %+v", len(rcv.calls), got)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range rcv.calls {
		if err := wh.Verify(c.body, c.header); err != nil {
			t.Errorf("delivery %d: %v", i+1, err)
		}
	}
	if id := second.header.Get("webhook-id"); id == "" || id != rcv.calls[0].header.Get("webhook-id") {
		t.Errorf("webhook-ids %q then %q: want the same", rcv.calls[0].header.Get("webhook-id"), id)
	}
	if !strings.Contains(string(second.body), queued.ID) {
		t.Errorf("the delivery's body does not name job %s: %.200s", queued.ID, second.body)
	}
}
