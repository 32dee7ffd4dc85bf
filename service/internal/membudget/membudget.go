// Package membudget decides how the service's memory is shared, and holds requests to it.
//
// The memory limit (the pod's, read from the cgroup) is split once, at start: what the API
// process and each worker need idle, each worker's share for its language models (measured at
// start: ocr.Languages.WorkerModelMemory), a share for one page per worker
// (ocr.Config.PageMemory), and the rest for request data the API process holds (bodies being read, decoded images,
// downloads). Requests reserve that data before they read it, so that no mix of sizes and
// concurrency can exceed it: a request that cannot get its share in time is refused with
// 503 server_busy rather than letting the pod be OOM-killed.
package membudget

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"golang.org/x/sync/semaphore"

	"github.com/readocr/readocr/service/internal/failure"
)

// Measured, with a margin: the API process idle (30 MiB), and a worker without its language
// models (28 MiB at start, 65 MiB once it has read large pages: Tesseract keeps buffers sized
// for the largest page; ocr.TestWorkerGivesBackMemory measures a worker with eng, 46 and 83
// MiB, of which eng's model is 18). Models are accounted apart, each as measured.
const (
	APIBase    = 64 << 20
	WorkerBase = 64 << 20
	// headroom is kept free of any share: Go's garbage between collections, the kernel's page
	// cache charged to the cgroup, measurement noise.
	headroomRatio = 0.10
)

// Limit returns the memory the service may use: the cgroup's limit when there is one,
// otherwise half of the machine's memory (a developer's laptop shared with other work).
func Limit() (limit int64, source string) {
	if l, err := memlimit.FromCgroup(); err == nil && l > 0 && l < 1<<60 {
		return int64(l), "cgroup"
	}
	if l, err := memlimit.FromSystem(); err == nil && l > 0 {
		return int64(l / 2), "half of the machine"
	}
	return 2 << 30, "assumed"
}

// Plan is how a memory limit is shared.
type Plan struct {
	Limit        int64 // all of it: API process and workers
	Workers      int
	ModelMemory  int64 // each worker's share for its language models
	PageMemory   int64 // each worker's share for one page
	RequestBytes int64 // request data held by the API process at once
	GoMemLimit   int64 // soft limit of the API process's Go heap
}

// NewPlan splits limit between workers, each with modelBytes for its language models, and
// request data, which must hold at least minRequestBytes (the largest single request). Request
// data gets a quarter of what is left after the idle processes and the models, and never less
// than two of the largest requests or more than eight; pages get the rest.
func NewPlan(limit int64, workers int, minRequestBytes, modelBytes int64) (Plan, error) {
	p := Plan{Limit: limit, Workers: workers, ModelMemory: modelBytes}
	free := int64(float64(limit)*(1-headroomRatio)) - APIBase - int64(workers)*(WorkerBase+modelBytes)
	p.RequestBytes = min(max(free/4, 2*minRequestBytes), 8*minRequestBytes)
	p.PageMemory = (free - p.RequestBytes) / int64(workers)
	p.GoMemLimit = APIBase + p.RequestBytes
	if p.PageMemory < 32<<20 {
		return p, fmt.Errorf("a memory limit of %d MiB is too small for %d workers with %d MiB of language models each and requests of up to %d MiB: "+
			"each worker would have %d MiB for a page (at least 32 MiB); give more memory, fewer workers or fewer languages (--max-languages, fewer packs)",
			limit>>20, workers, modelBytes>>20, minRequestBytes>>20, p.PageMemory>>20)
	}
	return p, nil
}

// WorkerMemory is the most a worker may hold: itself, its models and one page. One that goes
// past it is killed (ocr.Config.WorkerMemory).
func (p Plan) WorkerMemory() int64 { return WorkerBase + p.ModelMemory + p.PageMemory }

// Budget is a pool of bytes that requests reserve before they hold data. Waiters are served
// first come, first served, so a large request is not starved by small ones.
type Budget struct {
	size  int64
	wait  time.Duration
	sem   *semaphore.Weighted
	inUse atomic.Int64
}

// ErrBusy is the answer when the budget stays short for the whole wait.
var ErrBusy = failure.New(failure.ServerBusy, "the service's memory for requests is in use: retry shortly")

// New returns a budget of size bytes; Reserve waits at most wait for its share.
func New(size int64, wait time.Duration) *Budget {
	return &Budget{size: size, wait: wait, sem: semaphore.NewWeighted(size)}
}

// Size is the budget's total.
func (b *Budget) Size() int64 { return b.size }

// InUse is what is reserved now.
func (b *Budget) InUse() int64 { return b.inUse.Load() }

// Reservation is what one request holds. It is safe for concurrent use.
type Reservation struct {
	b  *Budget
	mu sync.Mutex
	n  int64
}

// Reserve waits for n bytes: at most the budget's wait (then ErrBusy), or until ctx ends
// (then why, see failure.FromContext). A request larger than the whole budget is refused at
// once.
func (b *Budget) Reserve(ctx context.Context, n int64) (*Reservation, error) {
	r := &Reservation{b: b}
	return r, r.Grow(ctx, n)
}

// Grow adds n bytes to r, waiting as Reserve does.
func (r *Reservation) Grow(ctx context.Context, n int64) error {
	if r == nil || n <= 0 {
		return nil
	}
	b := r.b
	if n > b.size {
		return failure.Detail(ErrBusy, "this request needs %d MiB, more than the %d MiB all requests share", n>>20, b.size>>20)
	}
	wait, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.sem.Acquire(wait, n); err != nil {
		if ctx.Err() != nil {
			return failure.FromContext(ctx, failure.ServerBusy, "waiting for memory")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return ErrBusy
		}
		return err
	}
	b.inUse.Add(n)
	r.mu.Lock()
	r.n += n
	r.mu.Unlock()
	return nil
}

// Shrink gives back what r holds beyond n bytes.
func (r *Reservation) Shrink(n int64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if give := r.n - max(n, 0); give > 0 {
		r.n -= give
		r.b.inUse.Add(-give)
		r.b.sem.Release(give)
	}
}

// Release gives everything back.
func (r *Reservation) Release() { r.Shrink(0) }

// Held is what r holds now.
func (r *Reservation) Held() int64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
