package ocr

// One job with one worker: sent, watched (memory, the request's end), answered or the worker replaced.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
)

// errWorkerGone is exchange's error when p died before it got the job (a worker killed while
// idle, say by the kernel's OOM killer): the job is given to another worker.
var errWorkerGone = errors.New("the OCR worker was gone before it got the job")

// exchangeAny takes a worker as take does and exchanges j with it, once more with another
// worker when the first was gone before it got the job.
func (e *Engine) exchangeAny(ctx context.Context, batch bool, lang string, j job) (outcome, error) {
	for attempt := 0; ; attempt++ {
		p, err := e.take(ctx, batch, lang, j.Doc)
		if err != nil {
			return outcome{}, err
		}
		o, err := e.exchange(ctx, p, j)
		if errors.Is(err, errWorkerGone) && attempt == 0 {
			e.log.Warn("OCR worker gone before its job: retrying on another", "worker", p.id, "err", err)
			continue
		}
		if err != nil && errors.Is(err, errWorkerGone) {
			return o, failure.Wrap(failure.Internal, err, "OCR workers are failing")
		}
		return o, err
	}
}

// exchange sends j to p (with its document's bytes only when p may not have them) and waits
// for its outcome or the end of ctx. It gives p back either way.
func (e *Engine) exchange(ctx context.Context, p *process, j job) (outcome, error) {
	data := j.DocData
	if j.Doc != 0 && p.doc == j.Doc {
		j.DocData = nil // the worker said it keeps it
	}
	watchDone := make(chan struct{})
	if e.cfg.WorkerMemory > 0 {
		go e.watch(p, e.cfg.WorkerMemory, watchDone)
	}
	defer close(watchDone)
	for {
		j.Seq = e.seq.Add(1)
		if err := p.send(j); err != nil {
			p.kill("broken pipe")
			e.release(p, false)
			return outcome{}, fmt.Errorf("%w: %w", errWorkerGone, err)
		}
		select {
		case o, ok := <-p.outcomes:
			if !ok {
				err := e.crashed(p)
				e.release(p, false)
				return outcome{}, err
			}
			e.record(p, o)
			if o.Fail == failNeedDoc && j.DocData == nil && j.Doc != 0 {
				j.DocData = data // it gave it back since
				continue
			}
			e.release(p, true)
			return o, nil
		case <-ctx.Done():
			// Answer now; the worker is stopped (or killed) and given back in the background.
			e.wg.Add(1)
			go func(seq uint64) {
				defer e.wg.Done()
				e.stopPage(p, seq)
			}(j.Seq)
			return outcome{}, failure.FromContext(ctx, failure.OCRTimeout, "the page was being recognised")
		}
	}
}

// stopPage stops p's page between words, or kills p when it does not stop within stopGrace
// (layout analysis, for one, never checks the stop flag; nor does PDF rendering), and gives the
// worker back.
func (e *Engine) stopPage(p *process, seq uint64) {
	p.stop(seq)
	select {
	case o, ok := <-p.outcomes:
		if ok {
			e.record(p, o)
			e.release(p, true)
			return
		}
	case <-time.After(stopGrace):
		e.log.Info("OCR worker did not stop its page in time: killed", "worker", p.id, "grace", stopGrace.String())
		p.kill("stop")
	}
	e.release(p, false)
}

// watch kills p when its resident memory goes past limit, until done.
func (e *Engine) watch(p *process, limit int64, done <-chan struct{}) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if rss := p.rss(); rss > limit {
				e.log.Warn("OCR worker went past its memory share: killed", "worker", p.id,
					"rss_mib", rss>>20, "limit_mib", limit>>20)
				p.kill("memory")
				return
			}
		}
	}
}

// crashed says why p died in the middle of a page.
func (e *Engine) crashed(p *process) error {
	<-p.exited
	switch p.killedFor() {
	case "memory":
		return failure.Detail(ErrTooLarge, "this page needed more than the %d MiB a worker may use", e.cfg.WorkerMemory>>20)
	case "":
		e.log.Warn("OCR worker died reading a page", "worker", p.id, "err", fmt.Sprint(p.exitErr))
		return failure.Detail(ErrUndecodable, "the OCR worker stopped while reading this image (%v)", p.exitErr)
	}
	return failure.Wrap(failure.Internal, p.exitErr, "OCR worker lost")
}

// replace starts a worker in place of p (dead or killed, and taken by a request until now) and
// makes it available, retrying until it starts or the engine closes.
func (e *Engine) replace(p *process) {
	e.mu.Lock()
	delete(e.all, p)
	e.running--
	e.replacing++
	e.replaced.Add(1)
	e.wg.Add(1)
	e.mu.Unlock()
	p.kill("replaced")
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			e.replacing--
			e.checkDrained()
			e.mu.Unlock()
		}()
		<-p.exited
		for delay := 100 * time.Millisecond; ; delay = min(delay*2, 10*time.Second) {
			select {
			case <-e.done:
				return
			default:
			}
			np, err := startProcess(int(e.nextID.Add(1)), e.workerConfig(), e.cfg, e.log)
			if err == nil {
				e.log.Info("OCR worker replaced", "old", p.id, "new", np.id, "reason", p.killedFor())
				e.mu.Lock()
				e.all[np] = true
				e.mu.Unlock()
				e.put(np)
				return
			}
			e.log.Error("could not start an OCR worker", "err", err, "retry_in", delay.String())
			select {
			case <-time.After(delay):
			case <-e.done:
				return
			}
		}
	}()
}

// result turns a worker's outcome into a Result or an error.
func (e *Engine) result(o outcome, withLayout bool) (Result, error) {
	switch o.Fail {
	case failNone:
	case failUndecodable:
		return Result{}, failure.Detail(ErrUndecodable, "%s", o.Message)
	case failStopped:
		return Result{}, failure.New(failure.Internal, "the page was stopped")
	case failCoded:
		return Result{}, failure.New(failure.Code(o.Code), "%s", o.Message)
	default:
		return Result{}, failure.Wrap(failure.Internal, errors.New(o.Message), "OCR failed")
	}
	res := Result{Text: o.Text, HOCR: o.HOCR, ALTO: o.ALTO, TSV: o.TSV, PDF: o.PDF, Extracted: o.Extracted, Depth: o.Depth, Image: o.Image,
		Rotate: o.Rotate, Skew: o.Skew}
	if withLayout {
		res.Words, res.Lines, res.Confidence = layout(o.Boxes)
	}
	return res, nil
}
