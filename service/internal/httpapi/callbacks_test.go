package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/webhook"
)

// Callbacks, by the Standard Webhooks specification: signed (verified here as the README's
// snippet verifies), retried from the outbox while the receiver answers 500 (the attempts on
// the job's record), stopped by 410 Gone, never sent to an address the rules refuse (a dead
// letter at once).
func TestJobCallbacks(t *testing.T) {
	type call struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var calls []call
	var fails atomic.Int32
	fails.Store(1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, call{r.Header.Clone(), b})
		mu.Unlock()
		if r.URL.Path == "/gone" {
			w.WriteHeader(http.StatusGone)
			return
		}
		if fails.Add(-1) >= 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer receiver.Close()

	h := newHarness(t, options{jobs: jobsConfig(), allowPrivate: true})
	photo := b64(testimages.Get(t, "gos_001-helloworld.png").Bytes)
	j := h.submit(map[string]any{"image": photo, "callback_url": receiver.URL + "/hook?token=abc"})
	if j.Callback == nil || j.Callback.State != jobs.CallbackPending {
		t.Fatalf("a new job's callback: %+v", j.Callback)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 2 }, "two calls (a 500, then a 200)")
	for _, c := range calls {
		var got struct {
			Type string
			Data map[string]string
		}
		if err := json.Unmarshal(c.body, &got); err != nil || got.Type != "job.succeeded" || got.Data["id"] != j.ID || got.Data["status"] != "succeeded" {
			t.Errorf("callback body %s", c.body)
		}
		if err := readmeVerify("test-secret", c.body, c.header); err != nil {
			t.Errorf("the README's verifier: %v (%v)", err, c.header)
		}
		if readmeVerify("other-secret", c.body, c.header) == nil {
			t.Error("the signature verifies with another secret")
		}
		if readmeVerify("test-secret", []byte(`{"type":"job.failed"}`), c.header) == nil {
			t.Error("another body verifies")
		}
		if c.header.Get("webhook-id") != calls[0].header.Get("webhook-id") {
			t.Error("the retry has another webhook-id: receivers cannot drop the duplicate")
		}
	}
	waitFor(t, func() bool { cb := h.job(j.ID).Callback; return cb != nil && cb.State == jobs.CallbackDelivered }, "the delivery recorded")
	if cb := h.job(j.ID).Callback; cb.Attempts != 2 || cb.LastStatus != 200 || cb.LastAttempt == nil {
		t.Errorf("the callback on the job: %+v", cb)
	}

	// 410 Gone: the receiver asks to stop, one attempt only.
	before := len(calls)
	g := h.submit(map[string]any{"image": photo, "callback_url": receiver.URL + "/gone"})
	waitFor(t, func() bool { cb := h.job(g.ID).Callback; return cb != nil && cb.State == jobs.CallbackStopped }, "the callback stopped")
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	if len(calls) != before+1 {
		t.Errorf("%d attempts at a 410 receiver, want 1", len(calls)-before)
	}
	mu.Unlock()

	// Without --allow-private-urls, a callback to loopback is never made: failed at once.
	h2 := newHarness(t, options{jobs: jobsConfig()})
	before = len(calls)
	j2 := h2.await(h2.submit(map[string]any{"image": photo, "callback_url": receiver.URL + "/hook"}).ID, time.Minute)
	if j2.Status != jobs.Succeeded {
		t.Fatalf("job: %+v", j2)
	}
	waitFor(t, func() bool { cb := h2.job(j2.ID).Callback; return cb != nil && cb.State == jobs.CallbackFailed }, "the refusal recorded")
	if cb := h2.job(j2.ID).Callback; cb.Attempts != 1 || cb.LastError == "" {
		t.Errorf("a refused callback: %+v", cb)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != before {
		t.Errorf("a callback reached a loopback address: %d calls", len(calls)-before)
	}
	if strings.Count(h2.logs.String(), `"msg":"callback failed: dead letter"`) != 1 {
		t.Error("no dead letter, or a refused address was retried")
	}

	// Callbacks need a secret.
	cfg := jobsConfig()
	cfg.WebhookSecret = ""
	h3 := newHarness(t, options{jobs: cfg})
	b, _ := json.Marshal(map[string]any{"image": photo, "callback_url": "https://example.com/hook"})
	req, _ := http.NewRequest(http.MethodPost, h3.ts.URL+"/jobs", bytes.NewReader(b))
	if r := h3.do(req); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "webhook-secret") {
		t.Errorf("a callback without a secret: %d %s", r.status, r.body)
	}
}

// readmeVerify is the receiver's check as the README shows it (a raw secret here; a
// "whsec_..." secret goes to NewWebhook instead).
func readmeVerify(secret string, body []byte, header http.Header) error {
	wh, err := standardwebhooks.NewWebhookRaw([]byte(secret))
	if err != nil {
		return err
	}
	return wh.Verify(body, header) // the signatures, and a timestamp within 5 minutes of now
}

// A delivery whose timestamp is older than the tolerance is refused by the README's verifier,
// even with a good signature (a replay); one signed with either of two secrets verifies.
func TestReadmeVerifierRefusesOldTimestamps(t *testing.T) {
	s, _ := webhook.NewSigner("new-secret,test-secret")
	body := []byte(`{"type":"job.succeeded","data":{"id":"X","status":"succeeded"}}`)
	fresh, _ := s.Sign("X.succeeded", time.Now(), body)
	if err := readmeVerify("test-secret", body, fresh); err != nil {
		t.Errorf("fresh, old secret: %v", err)
	}
	if err := readmeVerify("new-secret", body, fresh); err != nil {
		t.Errorf("fresh, new secret: %v", err)
	}
	old, _ := s.Sign("X.succeeded", time.Now().Add(-6*time.Minute), body)
	if err := readmeVerify("test-secret", body, old); err == nil {
		t.Error("a delivery signed 6 minutes ago verified")
	}
}

// A process that recorded its job's end and died before the callback reached the outbox:
// the job is redelivered, the next runner finds it done and queues the callback then.
func TestCallbackOfAJobWhoseProcessDiedAtItsEnd(t *testing.T) {
	var calls atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer receiver.Close()
	h := newHarness(t, options{jobs: jobsConfig(), noRunner: true, allowPrivate: true})
	j := h.submit(map[string]any{"image": b64(testimages.Get(t, "gos_001-helloworld.png").Bytes), "callback_url": receiver.URL})

	// What the dead process wrote: the record says succeeded; nothing is in the outbox.
	nc, err := h.broker.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), "readocr_jobs")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	json.Unmarshal(e.Value(), &rec)
	rec["status"], rec["finished_at"] = "succeeded", time.Now().UTC()
	v, _ := json.Marshal(rec)
	if _, err := kv.Update(context.Background(), j.ID, v, e.Revision()); err != nil {
		t.Fatal(err)
	}

	h.startRunner()
	waitFor(t, func() bool { cb := h.job(j.ID).Callback; return cb != nil && cb.State == jobs.CallbackDelivered }, "the callback delivered")
	if calls.Load() != 1 {
		t.Errorf("%d calls, want 1", calls.Load())
	}
}
