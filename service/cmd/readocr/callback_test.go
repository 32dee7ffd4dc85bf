package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// A callback outlives the process that finished its job: that process is killed (SIGKILL)
// while its receiver holds the first delivery, and another process, started afterwards, makes
// the delivery from the outbox in JetStream. The receiver gets it signed, with the same
// webhook-id, and the job's record says delivered, 2 attempts.
func TestCallbackSurvivesKill(t *testing.T) {
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
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}

	type call struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var calls []call
	first := make(chan struct{})
	release := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, call{r.Header.Clone(), b})
		n := len(calls)
		mu.Unlock()
		if n == 1 {
			close(first)
			select { // holds the first delivery until its sender is dead
			case <-release:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer receiver.Close()
	defer close(release)

	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	args := []string{"--workers", "1", "--nats-url", ns.ClientURL(), "--webhook-secret", secret, "--allow-private-urls",
		"--webhook-timeout", "2s"}
	a := startBinary(t, bin, args...)
	body := `{"image":"` + base64.StdEncoding.EncodeToString(testimages.Get(t, "gos_001-helloworld.png").Bytes) + `","callback_url":"` + receiver.URL + `/done"}`
	resp, err := http.Post(a.base+"/jobs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var job struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	select {
	case <-first:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no delivery: %s", tail(a.out.String(), 10))
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()

	b := startBinary(t, bin, args...)
	var got struct {
		Callback struct {
			State    string
			Attempts int
		}
	}
	for deadline := time.Now().Add(time.Minute); got.Callback.State != "delivered"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered after the kill: %+v\n%s", got, tail(b.out.String(), 10))
		}
		getJSON(t, b.base+"/jobs/"+job.ID, &got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || got.Callback.Attempts != 2 {
		t.Fatalf("%d calls, record %+v", len(calls), got)
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	for i, c := range calls {
		if err := wh.Verify(c.body, c.header); err != nil {
			t.Errorf("call %d: %v", i+1, err)
		}
	}
	if id := calls[1].header.Get("webhook-id"); id == "" || id != calls[0].header.Get("webhook-id") {
		t.Errorf("webhook-ids %q, %q", calls[0].header.Get("webhook-id"), id)
	}
	if !strings.Contains(b.out.String(), `"msg":"callback delivered","job":"`+job.ID) {
		t.Errorf("the second process did not deliver it:\n%s", tail(b.out.String(), 10))
	}
}
