package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The real rate limiter is another change; this fake answers as the contract says it will:
// 429 with a JSON error and Retry-After, then 200.
func TestRetriesAfter429(t *testing.T) {
	var calls atomic.Int32
	var bodies []string
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _, err := r.FormFile("image")
		if err != nil {
			t.Errorf("no image part: %v", err)
			return
		}
		b, _ := io.ReadAll(f)
		bodies, auth = append(bodies, string(b)+"|"+r.FormValue("lang")), append(auth, r.Header.Get("Authorization"))
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down"}}`)
			return
		}
		io.WriteString(w, `{"text":"hello"}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "k3y")
	var waited time.Duration
	c.OnRetry = func(e *Error, d time.Duration) { waited = d }
	start := time.Now()
	res, err := c.Read(context.Background(), FromBytes("a.png", []byte("PIXELS")), Options{Lang: "eng"})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if text, _ := res.Text(); text != "hello" || calls.Load() != 2 {
		t.Fatalf("text %q after %d calls", text, calls.Load())
	}
	if waited != time.Second || took < time.Second {
		t.Errorf("waited %v (told %v), want Retry-After's 1s", took, waited)
	}
	for i := range bodies {
		if bodies[i] != "PIXELS|eng" || auth[i] != "Bearer k3y" {
			t.Errorf("attempt %d sent %q with Authorization %q", i+1, bodies[i], auth[i])
		}
	}
}

func TestGivesUpAfterMaxRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"queue_timeout","message":"busy"},"request_id":"r1"}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "")
	c.MaxRetries, c.MaxRetryWait = 2, 10*time.Millisecond // MaxRetryWait caps Retry-After
	start := time.Now()
	_, err := c.Languages(context.Background())
	e, ok := AsError(err)
	if !ok || e.Status != 503 || e.Code != "queue_timeout" || e.RequestID != "r1" || e.RetryAfter != time.Second {
		t.Fatalf("err %#v", err)
	}
	if calls.Load() != 3 || time.Since(start) > 900*time.Millisecond {
		t.Errorf("%d calls in %v, want 3 with waits capped at 10ms", calls.Load(), time.Since(start))
	}
}

func TestErrorsAreNotRetried(t *testing.T) {
	for _, c := range []struct {
		status     int
		body, want string
	}{
		{500, `{"error":{"code":"internal","message":"internal error"}}`, "500 internal: internal error"},
		{429, `{"error":{"code":"queue_full","message":"no Retry-After"}}`, "429 queue_full: no Retry-After"},
		{502, `<html>Bad Gateway from a proxy</html>`, "502 Bad Gateway: <html>Bad Gateway from a proxy</html>"},
		{401, `{"error":{"code":"unauthorized","message":"an API key is required"}}`, "401 unauthorized: an API key is required"},
	} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(c.status)
			io.WriteString(w, c.body)
		}))
		cl, _ := New(srv.URL, "")
		_, err := cl.Read(context.Background(), FromBytes("x", []byte("x")), Options{})
		if err == nil || err.Error() != c.want || calls.Load() != 1 {
			t.Errorf("%d: err %v after %d calls, want %q once", c.status, err, calls.Load(), c.want)
		}
		srv.Close()
	}
}

func TestUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, _ := New("http://"+addr, "")
	_, err := c.Languages(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err %v", err)
	}
	for _, bad := range []string{"localhost:4000", "ftp://x", "http://", ""} {
		if _, err := New(bad, ""); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

// jobServer fakes the jobs API for Wait: a job that takes 3 polls (or events) to succeed.
func jobServer(t *testing.T, events bool) (*httptest.Server, *atomic.Int32) {
	var polls atomic.Int32
	job := func(done int) string {
		st := "running"
		if done == 3 {
			st = "succeeded"
		}
		return fmt.Sprintf(`{"id":"J","status":%q,"progress":{"pages_done":%d,"pages_total":3},"created_at":"2026-01-01T00:00:00Z","attempts":1}`, st, done)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/jobs/J/events" && events:
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 1; i <= 3; i++ {
				fmt.Fprintf(w, "event: progress\ndata: %s\n\n", job(i))
				w.(http.Flusher).Flush()
			}
		case r.URL.Path == "/jobs/J":
			n := min(int(polls.Add(1)), 3)
			io.WriteString(w, job(n))
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no route"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &polls
}

func TestWaitPollsWithoutEvents(t *testing.T) {
	srv, polls := jobServer(t, false)
	c, _ := New(srv.URL, "")
	c.PollInterval = time.Millisecond
	var seen []int
	j, err := c.Wait(context.Background(), "J", func(j *Job) { seen = append(seen, j.Progress.PagesDone) })
	if err != nil || j.Status != Succeeded {
		t.Fatalf("%v %+v", err, j)
	}
	if fmt.Sprint(seen) != "[1 2 3]" || !c.noEvents.Load() {
		t.Errorf("progress %v, noEvents %v", seen, c.noEvents.Load())
	}
	// The next job does not ask for events again.
	before := polls.Load()
	polls.Store(0)
	if _, err := c.Wait(context.Background(), "J", nil); err != nil || before != 3 {
		t.Fatal(err, before)
	}
}

func TestWaitFollowsEvents(t *testing.T) {
	srv, polls := jobServer(t, true)
	c, _ := New(srv.URL, "")
	var seen []int
	j, err := c.Wait(context.Background(), "J", func(j *Job) { seen = append(seen, j.Progress.PagesDone) })
	if err != nil || j.Status != Succeeded || fmt.Sprint(seen) != "[1 2 3]" || polls.Load() != 0 {
		t.Fatalf("%v %+v progress %v polls %d", err, j, seen, polls.Load())
	}
}

func TestWaitMissingJob(t *testing.T) {
	srv, _ := jobServer(t, false)
	c, _ := New(srv.URL, "")
	_, err := c.Wait(context.Background(), "NOPE", nil)
	if e, ok := AsError(err); !ok || e.Status != 404 || c.noEvents.Load() {
		t.Fatalf("err %v, noEvents %v", err, c.noEvents.Load())
	}
}

func TestFormFields(t *testing.T) {
	got := formFields(Options{Lang: "eng+deu", Format: PDF, Layout: true}, JobOptions{IdempotencyKey: "k"})
	b, _ := json.Marshal(got)
	if string(b) != `[["lang","eng+deu"],["layout","true"],["format","pdf"],["idempotency_key","k"]]` {
		t.Fatal(string(b))
	}
}
