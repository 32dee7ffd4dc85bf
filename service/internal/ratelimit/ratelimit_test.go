package ratelimit

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/readocr/readocr/internal/testsupport/syncbuffer"
)

// jetStream starts a real JetStream server on loopback and returns a new bucket's handle for
// each replica asked, each on its own connection.
func jetStream(t *testing.T) (*server.Server, func() KeyValue) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns, func() KeyValue {
		nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "limits", History: 1})
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// Two replicas share one bucket: together they get the burst, then the rate, never more, even
// when they ask at the same instant.
func TestBucketSharedByReplicas(t *testing.T) {
	_, bucket := jetStream(t)
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	a, b := New(bucket(), quiet()), New(bucket(), quiet())
	a.now, b.now = c.now, c.now
	// 40 goroutines under -race on a busy machine: a round trip past the production deadline
	// would degrade to local state (TestDegradesToLocalWhenNATSIsDown), which is not this test.
	a.timeout, b.timeout = 10*time.Second, 10*time.Second
	p := Policy{Rate: 2, Burst: 10}.WithDefaults(Policy{})
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		l := []*Limiter{a, b}[i%2]
		wg.Go(func() {
			if l.Take(context.Background(), "team-a", p).Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 10 {
		t.Fatalf("%d of 40 concurrent requests allowed over two replicas, want the burst of 10", allowed.Load())
	}
	r := a.Take(context.Background(), "team-a", p)
	if r.Allowed || r.Refused != PolicyRate || r.RetryAfter != 500*time.Millisecond {
		t.Fatalf("over the burst: %+v", r)
	}
	c.add(time.Second) // two tokens
	if !b.Take(context.Background(), "team-a", p).Allowed || !a.Take(context.Background(), "team-a", p).Allowed {
		t.Fatal("refilled tokens refused")
	}
	if a.Take(context.Background(), "team-a", p).Allowed {
		t.Fatal("a third token in one second at 2/s")
	}
	// Another key has its own bucket; a key without a rate is not limited.
	if r := a.Take(context.Background(), "team-b", p); !r.Allowed || r.Remaining != 9 {
		t.Fatalf("another key: %+v", r)
	}
	if !a.Take(context.Background(), "team-c", Policy{}).Allowed {
		t.Fatal("no policy, refused")
	}
}

// The page quota: checked before, counted after, per UTC window; the count of one replica
// binds the other.
func TestPageQuota(t *testing.T) {
	_, bucket := jetStream(t)
	c := &clock{t: time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)}
	a, b := New(bucket(), quiet()), New(bucket(), quiet())
	a.now, b.now = c.now, c.now
	p := Policy{Pages: 10}.WithDefaults(Policy{})
	ctx := context.Background()
	if r := a.Pages(ctx, "k", p); !r.Allowed || r.Remaining != 10 || r.Reset != time.Hour {
		t.Fatalf("fresh quota: %+v", r)
	}
	a.AddPages(ctx, "k", p.Period, 7)
	b.AddPages(ctx, "k", p.Period, 3)
	r := a.Pages(ctx, "k", p)
	if r.Allowed || r.Refused != PolicyPages || r.RetryAfter != time.Hour {
		t.Fatalf("quota used up: %+v", r)
	}
	c.add(time.Hour) // the next UTC day
	if r := b.Pages(ctx, "k", p); !r.Allowed || r.Remaining != 10 {
		t.Fatalf("next window: %+v", r)
	}
}

// NATS down: limits hold per replica (never open, never an outage), a warning is logged, and
// the shared state is used again once NATS is back.
func TestDegradesToLocalWhenNATSIsDown(t *testing.T) {
	ns, bucket := jetStream(t)
	var logs syncbuffer.Buffer
	l := New(bucket(), slog.New(slog.NewJSONHandler(&logs, nil)))
	p := Policy{Rate: 0.001, Burst: 3}
	ctx := context.Background()
	if !l.Take(ctx, "k", p).Allowed {
		t.Fatal("first request refused")
	}
	ns.Shutdown()
	start := time.Now()
	var allowed int
	for range 10 {
		if l.Take(ctx, "k", p).Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("NATS down: %d of 10 allowed, want the local bucket's 3", allowed)
	}
	if d := time.Since(start); d > 2*sharedTimeout+time.Second {
		t.Errorf("10 requests took %v with NATS down: each waited for it", d)
	}
	if n := countLines(logs.String(), "limits are per replica"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
}

// A request that loses every compare-and-set to other replicas until its deadline is refused
// for a moment: the store answers, so granting it from this replica's own bucket would exceed
// the shared limit, and degrading to local state would do so for every key.
func TestContendedTakeIsRefused(t *testing.T) {
	_, bucket := jetStream(t)
	l := New(bucket(), quiet())
	l.shared = alwaysBehind{l.shared}
	l.timeout = 50 * time.Millisecond
	r := l.Take(context.Background(), "k", Policy{Rate: 100, Burst: 100})
	if r.Allowed || r.Refused != PolicyRate || r.RetryAfter != contendedRetry {
		t.Fatalf("contended: %+v", r)
	}
	if l.sharedStore() == nil {
		t.Fatal("contention degraded the limiter to local state")
	}
}

// alwaysBehind is a shared store on which another replica always wrote just before: every
// write is a conflict.
type alwaysBehind struct{ store }

func (alwaysBehind) put(context.Context, string, []byte, uint64) error { return errConflict }

func countLines(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			n++
		}
	}
	return n
}

func TestFields(t *testing.T) {
	p := Policy{Rate: 2, Burst: 10, Pages: 1000, Period: 24 * time.Hour}
	if got, want := PolicyField(p), `"rate";q=10;w=5, "pages";q=1000;w=86400;readocr-unit="pages"`; got != want {
		t.Errorf("RateLimit-Policy %s, want %s", got, want)
	}
	if got := Item(PolicyRate, Result{Remaining: 3, Reset: 400 * time.Millisecond}); got != `"rate";r=3;t=1` {
		t.Errorf("RateLimit %s", got)
	}
}
