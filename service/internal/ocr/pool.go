package ocr

// The pool: which request gets the next idle worker, and what happens to a worker after a page.

import (
	"context"
	"slices"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
)

// take waits for an idle worker (one that keeps doc or has lang loaded, when one does) behind
// every request that waited before it, and behind every single page when batch: at most
// QueueTimeout for a single page; a page of a document waits as long as its request lasts.
func (e *Engine) take(ctx context.Context, batch bool, lang string, doc uint64) (p *process, err error) {
	if f := e.onWait.Load(); f != nil {
		start := time.Now()
		defer func() { (*f)(time.Since(start), batch, err == nil) }()
	}
	prio := 0
	if batch {
		prio = 1
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if len(e.idle) > 0 {
		i := slices.IndexFunc(e.idle, func(p *process) bool { return doc != 0 && p.doc == doc })
		if i < 0 {
			i = slices.IndexFunc(e.idle, func(p *process) bool { return slices.Contains(p.langs, lang) })
		}
		i = max(i, 0)
		p = e.idle[i]
		e.idle = slices.Delete(e.idle, i, i+1)
		e.running++
		e.mu.Unlock()
		return p, nil
	}
	w := &waiter{got: make(chan *process, 1)}
	e.waiting[prio] = append(e.waiting[prio], w)
	e.mu.Unlock()

	var timeout <-chan time.Time
	if !batch {
		timer := time.NewTimer(e.cfg.QueueTimeout)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case p := <-w.got:
		if p == nil {
			return nil, ErrClosed
		}
		return p, nil
	case <-timeout:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = failure.FromContext(ctx, failure.QueueTimeout, "waiting for an OCR worker")
	}
	e.mu.Lock()
	if i := slices.Index(e.waiting[prio], w); i >= 0 {
		e.waiting[prio] = slices.Delete(e.waiting[prio], i, i+1)
		e.mu.Unlock()
		return nil, err
	}
	e.mu.Unlock()
	// A worker was handed over as the wait ended: pass it on.
	if p := <-w.got; p != nil {
		e.release(p, true)
	}
	return nil, err
}

// record keeps what a worker reported about itself after a page.
func (e *Engine) record(p *process, o outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p.langs, p.cheap, p.doc = o.Langs, o.CHeap, o.Doc
}

// release ends a request's hold on p: to the next waiter or the idle list, or replaced when it
// died.
func (e *Engine) release(p *process, healthy bool) {
	if !healthy {
		e.replace(p)
		return
	}
	e.mu.Lock()
	e.running--
	e.mu.Unlock()
	e.put(p)
}

// put makes p available: to the first single page waiting, else the first document page, else
// idle. Once the engine is closing, p is stopped instead.
func (e *Engine) put(p *process) {
	e.mu.Lock()
	if e.closed {
		e.checkDrained()
		e.mu.Unlock()
		p.shutdown(2 * time.Second)
		return
	}
	for prio := range e.waiting {
		if len(e.waiting[prio]) > 0 {
			w := e.waiting[prio][0]
			e.waiting[prio] = e.waiting[prio][1:]
			e.running++
			e.mu.Unlock()
			w.got <- p
			return
		}
	}
	e.idle = append(e.idle, p)
	e.mu.Unlock()
}

// checkDrained closes drained once the engine is closed and no worker is running or being
// replaced. e.mu is held.
func (e *Engine) checkDrained() {
	if e.closed && e.running == 0 && e.replacing == 0 {
		select {
		case <-e.drained:
		default:
			close(e.drained)
		}
	}
}
