// Package ratelimit enforces each API key's limits: a request rate (a token bucket) and a page
// quota per period. The state is shared by every replica through a JetStream key-value bucket
// (the one store the service already has), updated by compare-and-set on the entry's
// revision: two replicas that take a token at once cannot both spend the last one.
//
// Cost per request: one KV update when this replica wrote the key's bucket last (its revision
// is cached), one read and one update when another replica did; a refusal writes nothing. The
// page quota costs one read before an OCR request and one update after it.
//
// When the KV store does not answer (NATS down or partitioned), the limiter degrades to
// per-replica limits for a few seconds at a time rather than failing open (no limit at all) or
// closed (every client refused): API keys are read from a local file, so authentication never
// depends on NATS, and a broker outage then costs at most the replicas' count times the rate,
// instead of an outage of the OCR API.
package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// Policy is one key's limits; zero values mean no limit. The key file sets it (YAML names).
type Policy struct {
	Rate   float64       `yaml:"rate,omitempty" json:"rate,omitempty"`     // requests per second, refilled continuously
	Burst  int           `yaml:"burst,omitempty" json:"burst,omitempty"`   // requests at once (the bucket's size); default: max(1, rate)
	Pages  int64         `yaml:"pages,omitempty" json:"pages,omitempty"`   // pages per period
	Period time.Duration `yaml:"period,omitempty" json:"period,omitempty"` // the quota's period, windows aligned on the Unix epoch (24h: UTC days); default 24h
}

// DefaultPeriod is a page quota's period when the key file names none.
const DefaultPeriod = 24 * time.Hour

// WithDefaults fills what p leaves unset from d, then the built-in defaults.
func (p Policy) WithDefaults(d Policy) Policy {
	if p.Rate == 0 {
		p.Rate = d.Rate
	}
	if p.Burst == 0 {
		p.Burst = d.Burst
	}
	if p.Pages == 0 {
		p.Pages = d.Pages
	}
	if p.Period == 0 {
		p.Period = d.Period
	}
	if p.Period == 0 {
		p.Period = DefaultPeriod
	}
	if p.Rate > 0 && p.Burst < 1 {
		p.Burst = max(1, int(math.Ceil(p.Rate)))
	}
	return p
}

// Result is what one check found, for the RateLimit header fields and Retry-After.
type Result struct {
	Allowed    bool
	Refused    string        // the policy that refused: PolicyRate or PolicyPages
	RetryAfter time.Duration // when a refused request may succeed
	Remaining  int64         // quota units left in the policy checked
	Reset      time.Duration // until more quota is available (a token, or the next window)
}

// The policies' names in RateLimit-Policy and RateLimit.
const (
	PolicyRate  = "rate"
	PolicyPages = "pages"
)

// Limiter checks keys against their policies. It is safe for concurrent use.
type Limiter struct {
	shared store // JetStream KV; nil: per process only
	local  *memStore
	log    *slog.Logger
	now    func() time.Time

	timeout time.Duration // one round trip to the shared store (a test on a loaded machine lengthens it)

	mu       sync.Mutex
	degraded time.Time // until then the shared store is not tried
	warned   time.Time
}

// degradeFor is how long the limiter keeps to local state after the shared store failed.
const degradeFor = 5 * time.Second

// sharedTimeout bounds one round trip to the shared store.
const sharedTimeout = 250 * time.Millisecond

// New returns a limiter over kv (a JetStream key-value bucket; nil keeps the state in this
// process only, for a service without a broker).
func New(kv KeyValue, log *slog.Logger) *Limiter {
	l := &Limiter{local: newMemStore(), log: log, now: time.Now, timeout: sharedTimeout}
	if kv != nil {
		l.shared = newKVStore(kv)
	}
	return l
}

// Shared reports whether the state is shared with other replicas.
func (l *Limiter) Shared() bool { return l.shared != nil }

// Take spends one request of key's rate. Without a rate in p, it allows at once.
func (l *Limiter) Take(ctx context.Context, key string, p Policy) Result {
	if p.Rate <= 0 {
		return Result{Allowed: true}
	}
	var res Result
	err := l.update(ctx, "rate."+key, true, func(v []byte) ([]byte, bool) {
		var b bucket
		json.Unmarshal(v, &b)
		nb, r := b.take(l.now(), p)
		res = r
		if !r.Allowed {
			return nil, false
		}
		out, _ := json.Marshal(nb)
		return out, true
	})
	if errors.Is(err, errContended) {
		// So many requests for this key at once that this one lost every compare-and-set
		// until its deadline: more than the bucket allows, most likely. Granting it from local
		// state would exceed the shared limit.
		return Result{Refused: PolicyRate, RetryAfter: contendedRetry, Reset: contendedRetry}
	}
	return res
}

// contendedRetry is the Retry-After of a request refused for contention on its key's bucket.
const contendedRetry = time.Second

// Pages says whether key has pages left in its quota's current window (it writes nothing: the
// pages are counted when they are read, AddPages).
func (l *Limiter) Pages(ctx context.Context, key string, p Policy) Result {
	if p.Pages <= 0 {
		return Result{Allowed: true}
	}
	var res Result
	// Read afresh: another replica's pages count, and this one's cache would not show them.
	l.update(ctx, "pages."+key, false, func(v []byte) ([]byte, bool) {
		var w window
		json.Unmarshal(v, &w)
		res = w.check(l.now(), p)
		return nil, false
	})
	return res
}

// AddPages counts n pages read for key in the current window of period.
func (l *Limiter) AddPages(ctx context.Context, key string, period time.Duration, n int) {
	if n <= 0 || period <= 0 {
		return
	}
	err := l.update(ctx, "pages."+key, true, func(v []byte) ([]byte, bool) {
		var w window
		json.Unmarshal(v, &w)
		out, _ := json.Marshal(w.add(l.now(), period, int64(n)))
		return out, true
	})
	if err != nil { // one write per OCR request: contention this long is not expected
		l.log.Warn("page quota: pages not counted", "pages", n, "err", err.Error())
	}
}

// update runs f on an entry's value and writes its result (when it asks to) by
// compare-and-set, on the shared store, or on local state while that is degraded. With
// useCache, the value this process last saw is tried first: a write that finds it stale is
// refused (a conflict) and done again on a fresh read. A refused token is safe to decide on a
// stale bucket too: others' writes only take tokens.
//
// It returns errContended when the shared store answered but every write lost to another
// replica's until the deadline: the store works, so that is no reason to degrade to local
// state, and the caller decides.
func (l *Limiter) update(ctx context.Context, name string, useCache bool, f func([]byte) ([]byte, bool)) error {
	if s := l.sharedStore(); s != nil {
		ctx, cancel := context.WithTimeout(ctx, l.timeout)
		err := modify(ctx, s, name, useCache, f)
		cancel()
		if err == nil || errors.Is(err, errContended) {
			return err
		}
		l.degrade(err)
	}
	return modify(ctx, l.local, name, useCache, f)
}

func (l *Limiter) sharedStore() store {
	if l.shared == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.now().Before(l.degraded) {
		return nil
	}
	return l.shared
}

func (l *Limiter) degrade(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.degraded = now.Add(degradeFor)
	if now.Sub(l.warned) > time.Minute { // once a minute at most
		l.warned = now
		l.log.Warn("rate limits: the shared store does not answer; limits are per replica meanwhile", "err", err.Error())
	}
}

// modify is a compare-and-set loop: read (or take the cached revision), change, write if the
// revision is still the one read; again on a conflict.
func modify(ctx context.Context, s store, name string, useCache bool, f func([]byte) ([]byte, bool)) error {
	var v []byte
	var rev uint64
	cached := false
	if useCache {
		v, rev, cached = s.cached(name)
	}
	for conflicts := 0; ; conflicts++ {
		// A conflict is another replica's write that succeeded, so the replicas together make
		// progress; the deadline bounds how long this request waits for its turn.
		if conflicts > 0 && ctx.Err() != nil {
			return errContended
		}
		if !cached {
			var err error
			if v, rev, err = s.get(ctx, name); err != nil {
				return contended(ctx, conflicts, err)
			}
		}
		out, write := f(v)
		if !write {
			return nil
		}
		if err := s.put(ctx, name, out, rev); !errors.Is(err, errConflict) {
			return contended(ctx, conflicts, err)
		}
		cached = false
	}
}

// contended is errContended for a round trip cut by the deadline after conflicts, err otherwise.
func contended(ctx context.Context, conflicts int, err error) error {
	if err != nil && conflicts > 0 && ctx.Err() != nil {
		return errContended
	}
	return err
}

// errContended: every write lost to a concurrent one until the deadline.
var errContended = errors.New("ratelimit: the entry changed under every write until the deadline")

// bucket is a token bucket's state: tokens left at a time (Unix milliseconds).
type bucket struct {
	Tokens float64 `json:"t"`
	At     int64   `json:"at"` // 0: a full bucket
}

func (b bucket) take(now time.Time, p Policy) (bucket, Result) {
	ms := now.UnixMilli()
	tokens := float64(p.Burst)
	if b.At != 0 {
		elapsed := max(0, float64(ms-b.At)/1000) // a replica whose clock is behind adds nothing
		tokens = min(float64(p.Burst), b.Tokens+elapsed*p.Rate)
	}
	if tokens < 1 {
		wait := secondsDuration((1 - tokens) / p.Rate)
		return b, Result{Refused: PolicyRate, RetryAfter: wait, Remaining: 0, Reset: wait}
	}
	tokens--
	reset := time.Duration(0)
	if tokens < float64(p.Burst) {
		reset = secondsDuration((1 - (tokens - math.Floor(tokens))) / p.Rate)
	}
	return bucket{Tokens: tokens, At: max(ms, b.At)}, Result{Allowed: true, Remaining: int64(tokens), Reset: reset}
}

// window is a page quota's current window: its start (Unix seconds) and the pages read in it.
type window struct {
	Start int64 `json:"start"`
	Used  int64 `json:"used"`
}

func windowStart(now time.Time, period time.Duration) int64 {
	s := int64(period / time.Second)
	return now.Unix() - now.Unix()%max(s, 1)
}

func (w window) check(now time.Time, p Policy) Result {
	start := windowStart(now, p.Period)
	used := w.Used
	if w.Start != start {
		used = 0
	}
	reset := time.Unix(start, 0).Add(p.Period).Sub(now)
	if used >= p.Pages {
		return Result{Refused: PolicyPages, RetryAfter: reset, Remaining: 0, Reset: reset}
	}
	return Result{Allowed: true, Remaining: p.Pages - used, Reset: reset}
}

func (w window) add(now time.Time, period time.Duration, n int64) window {
	start := windowStart(now, period)
	if w.Start != start {
		return window{Start: start, Used: n}
	}
	return window{Start: start, Used: w.Used + n}
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Seconds rounds d up to whole seconds, at least 1 when d > 0 (delay-seconds, as Retry-After and
// the RateLimit fields count).
func Seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// PolicyField is the RateLimit-Policy field value for p (draft-ietf-httpapi-ratelimit-headers):
// the bucket as its size per the time it takes to refill, the quota per its period. Pages are
// not one of the draft's registered quota units, so a vendor parameter names them.
func PolicyField(p Policy) string {
	var out string
	if p.Rate > 0 {
		w := max(1, int64(math.Ceil(float64(p.Burst)/p.Rate)))
		out = `"` + PolicyRate + `";q=` + strconv.Itoa(p.Burst) + ";w=" + strconv.FormatInt(w, 10)
	}
	if p.Pages > 0 {
		if out != "" {
			out += ", "
		}
		out += `"` + PolicyPages + `";q=` + strconv.FormatInt(p.Pages, 10) + ";w=" + strconv.FormatInt(Seconds(p.Period), 10) + `;readocr-unit="pages"`
	}
	return out
}

// Item is one policy's RateLimit field item: `"rate";r=3;t=1`.
func Item(policy string, r Result) string {
	return `"` + policy + `";r=` + strconv.FormatInt(r.Remaining, 10) + ";t=" + strconv.FormatInt(Seconds(r.Reset), 10)
}
