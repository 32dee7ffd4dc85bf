package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// take fetches one message at a time (a worker that holds none in reserve leaves them to idle
// workers elsewhere) and runs it: a job first, if one waits, else a page task. Jobs are the
// small documents (read whole) and the first step of the large ones (their plan), so a single
// page waits for a page in progress at most, never behind a long document's queued pages
// (fairness: see also the per-job window of page tasks). An idle worker waits on the jobs and
// looks for page tasks every pageIdlePoll.
func (r *Runner) take(ctx context.Context, jobs, pages jetstream.Consumer) {
	for ctx.Err() == nil {
		if msg := takeWaiting(jobs); msg != nil {
			r.run(msg)
			continue
		}
		if msg := takeWaiting(pages); msg != nil {
			r.runPage(msg)
			continue
		}
		wait, cancel := context.WithTimeout(ctx, pageIdlePoll)
		batch, err := jobs.Fetch(1, jetstream.FetchContext(wait))
		if err != nil {
			cancel()
			if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				r.b.log.Warn("taking a job", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		for msg := range batch.Messages() {
			r.run(msg)
		}
		cancel()
	}
}

// pageIdlePoll is how often an idle worker looks for page tasks while it waits for jobs.
const pageIdlePoll = 200 * time.Millisecond

// takeWaiting takes a message waiting on cons, without waiting (nil: none).
func takeWaiting(cons jetstream.Consumer) jetstream.Msg {
	batch, err := cons.FetchNoWait(1)
	if err != nil {
		return nil
	}
	for msg := range batch.Messages() {
		return msg
	}
	return nil
}

// resumeSplit publishes a split job's first tasks again (each is a no-op, or a duplicate that
// the stream drops, when its page is done) and acknowledges the job.
func (r *Runner) resumeSplit(ctx context.Context, req request, msg jetstream.Msg) {
	plan, err := r.plans.get(ctx, r.b, req.ID)
	if err == nil {
		req.Image, req.InputObject, req.URL = nil, true, ""
		for i := range min(r.window(), len(plan.Pages)) {
			if err = r.publishTask(ctx, req, plan, i, msg.Headers(), 0); err != nil {
				break
			}
		}
	}
	if err != nil {
		r.b.log.Warn("split job not resumed: given back", "job", req.ID, "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	msg.Ack()
}

// track registers the cancel of a job (task -1) or of one of its page tasks, until the
// returned func.
func (r *Runner) track(id string, task int, cancel context.CancelCauseFunc) func() {
	r.mu.Lock()
	if r.jobs[id] == nil {
		r.jobs[id] = map[int]context.CancelCauseFunc{}
	}
	r.jobs[id][task] = cancel
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.jobs[id], task)
		if len(r.jobs[id]) == 0 {
			delete(r.jobs, id)
		}
		r.mu.Unlock()
	}
}
