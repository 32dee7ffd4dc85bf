package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/readocr/readocr/internal/testsupport/syncbuffer"
	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// Two embedded servers on one data directory would corrupt it: the second process is refused.
func TestDataDirectoryIsLocked(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b, err := Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "in use by another readocr") {
		t.Fatalf("second broker on the same directory: %v", err)
	}
	b.Close()
	b2, err := Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	b2.Close()
}

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{
		"MPSUELQ3MWBRRYQM4U62AIZOYU": true, "": false, "key.abc": false, "../x": false, "a*": false,
		"ABC>": false, strings.Repeat("A", 65): false, "abc": false,
	} {
		if validID(id) != ok {
			t.Errorf("validID(%q) = %v", id, !ok)
		}
	}
}

// In Kubernetes NATS and readocr start together: Open waits for a server that comes up after it
// (logging each attempt), and still fails, after --nats-wait, on a URL nothing answers.
func TestOpenWaitsForTheServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var logs syncbuffer.Buffer // the connection's callbacks log from their own goroutine
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	cfg := DefaultConfig()
	cfg.NATSURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	cfg.NATSWait = time.Second
	start := time.Now()
	if _, err := Open(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "waited 1s") {
		t.Fatalf("nothing listening: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v, want about --nats-wait", d)
	}

	cfg.NATSWait = time.Minute
	go func() {
		time.Sleep(3 * time.Second)
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
		if err != nil {
			t.Error(err)
			return
		}
		ns.Start()
		t.Cleanup(ns.Shutdown)
	}()
	b, err := Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("server up after 3 s: %v", err)
	}
	b.Close()
	if !strings.Contains(logs.String(), `"msg":"waiting for NATS"`) {
		t.Errorf("no waiting line in the log:\n%s", logs.String())
	}
}

// A retry while the first request with its idempotency key is still being queued (the key
// taken, the job's record not written yet) is told 409, not given a job that does not exist.
func TestIdempotencyKeyInFlight(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	b, err := Open(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	j := &Jobs{b: b, check: func(pipeline.Input) error { return nil }}
	s := Submission{Input: pipeline.Input{Source: "base64", Image: []byte("an image")}, SubmitOptions: SubmitOptions{IdempotencyKey: "order-17"}}
	held, _ := json.Marshal(idempotency{Job: "AAAAAAAAAAAAAAAAAAAAAAAAAA", Fingerprint: fingerprint(s)})
	if _, err := b.records.Create(context.Background(), idempotencyName("", "order-17"), held); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Submit(context.Background(), s); failure.CodeOf(err) != failure.IdempotencyKeyInUse {
		t.Fatalf("a retry while the first is being queued: %v", err)
	}
	// Another client's same key is its own, and queues.
	s.Owner = "team-b"
	if job, err := j.Submit(context.Background(), s); err != nil || job.Status != Queued {
		t.Fatalf("another owner's key: %+v %v", job, err)
	}
}
