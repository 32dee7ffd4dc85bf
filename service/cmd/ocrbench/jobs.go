package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// jobsReport compares POST /jobs with POST /read_ocr on the same mix, the same service and
// the same number of clients, back to back.
type jobsReport struct {
	n, conc            int
	sync, jobs         time.Duration // wall time of n requests / n jobs
	syncErrs, jobErrs  int
	idleSync, idleJobs []time.Duration // one client at a time: latency of a request, of a job end to end
	pollEvery          time.Duration
}

// runJobs measures throughput as jobs are used for a batch (all n submitted at once by conc
// clients, then read as they finish) against the same n sent to /read_ocr by conc clients, and
// the queueing overhead at low load: one client, a job's end-to-end time (submit, poll every
// 5 ms, result) against a request's.
func runJobs(log *slog.Logger, t target, images []page, n, conc int) (*jobsReport, error) {
	l := newLoader(t, images, conc)
	rep := &jobsReport{n: n, conc: conc, pollEvery: 5 * time.Millisecond}
	l.run(2*conc, nil, nil) // warm
	if _, err := runJobBatch(l, 2*conc); err != nil {
		return nil, err
	}

	log.Info("jobs: the same images through /read_ocr, then as a batch of jobs", "n", n, "clients", conc)
	began := time.Now()
	rep.syncErrs = l.run(n, nil, nil)
	rep.sync = time.Since(began)
	began = time.Now()
	errs, err := runJobBatch(l, n)
	if err != nil {
		return nil, err
	}
	rep.jobs, rep.jobErrs = time.Since(began), errs

	log.Info("jobs: one client at a time (queueing overhead)")
	one := newLoader(t, images, 1)
	const idle = 40
	rep.idleSync = make([]time.Duration, idle)
	one.run(idle, rep.idleSync, nil)
	rep.idleJobs = make([]time.Duration, idle)
	if _, err := runJobLoad(one, idle, rep.pollEvery, rep.idleJobs); err != nil {
		return nil, err
	}
	return rep, nil
}

// runJobBatch submits count jobs (l.conc clients at once), then waits for each in the order
// submitted (polling the oldest unfinished one every 50 ms) and reads its result.
func runJobBatch(l *loader, count int) (int, error) {
	ids := make([]string, count)
	var errs atomic.Int64
	parallel(count, l.conc, func(_, i int) {
		resp, err := l.client.Post(l.t.base+"/jobs", "application/json", bytes.NewReader(l.bodies[i%len(l.bodies)]))
		if err != nil {
			errs.Add(1)
			return
		}
		var job struct{ ID string }
		json.NewDecoder(resp.Body).Decode(&job)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			errs.Add(1)
			return
		}
		ids[i] = job.ID
	})
	for _, id := range ids {
		if id == "" {
			continue
		}
		if err := awaitJob(l, id, 50*time.Millisecond); err != nil {
			errs.Add(1)
		}
	}
	if e := errs.Load(); e > int64(count)/10 {
		return int(e), fmt.Errorf("%d of %d jobs failed", e, count)
	}
	return int(errs.Load()), nil
}

// runJobLoad runs count jobs, l.conc at a time: each client submits one, polls its status
// every poll until it is done, reads its result, and takes the next.
func runJobLoad(l *loader, count int, poll time.Duration, lat []time.Duration) (int, error) {
	var errs atomic.Int64
	var fatal atomic.Value
	parallel(count, l.conc, func(_, i int) {
		began := time.Now()
		if err := oneJob(l, l.bodies[i%len(l.bodies)], poll); err != nil {
			errs.Add(1)
			fatal.CompareAndSwap(nil, err)
		}
		if lat != nil {
			lat[i] = time.Since(began)
		}
	})
	if e := errs.Load(); e > int64(count)/10 {
		return int(e), fmt.Errorf("%d of %d jobs failed: %v", e, count, fatal.Load())
	}
	return int(errs.Load()), nil
}

func oneJob(l *loader, body []byte, poll time.Duration) error {
	resp, err := l.client.Post(l.t.base+"/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var job struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /jobs: %d %v", resp.StatusCode, err)
	}
	return awaitJob(l, job.ID, poll)
}

// awaitJob polls a job every poll until it succeeds, then reads and checks its result.
func awaitJob(l *loader, id string, poll time.Duration) error {
	var job struct{ Status string }
	for deadline := time.Now().Add(5 * time.Minute); job.Status != "succeeded"; time.Sleep(poll) {
		if time.Now().After(deadline) || job.Status == "failed" || job.Status == "canceled" {
			return fmt.Errorf("job %s %s", id, job.Status)
		}
		resp, err := l.client.Get(l.t.base + "/jobs/" + id)
		if err != nil {
			return err
		}
		json.NewDecoder(resp.Body).Decode(&job)
		resp.Body.Close()
	}
	resp, err := l.client.Get(l.t.base + "/jobs/" + id + "/result")
	if err != nil {
		return err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(out, []byte("quick brown")) {
		return fmt.Errorf("result of %s: %d", id, resp.StatusCode)
	}
	return nil
}

func median(l []time.Duration) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *jobsReport) render(b *strings.Builder) {
	syncRate, jobRate := float64(r.n)/r.sync.Seconds(), float64(r.n)/r.jobs.Seconds()
	fmt.Fprintf(b, "\n### Jobs\n\nThe mix, %d images, back to back on the same service: sent to `/read_ocr` by %d clients, then as a batch of %d jobs (embedded JetStream; submitted by %d clients at once, then each awaited in order, its status polled every 50 ms, its result read).\n\n",
		r.n, r.conc, r.n, r.conc)
	b.WriteString("| how | images/s | errors |\n|---|---:|---:|\n")
	fmt.Fprintf(b, "| POST /read_ocr | %.2f | %d |\n| a batch of jobs: POST /jobs, then GET status and result | %.2f | %d |\n", syncRate, r.syncErrs, jobRate, r.jobErrs)
	fmt.Fprintf(b, "\nJobs/synchronous throughput: **%.2f** (target >= 0.9). One client at a time (%d each): a request's p50 %d ms, a job's end to end p50 %d ms (submit, poll every %v, result): queueing overhead **%d ms** (target <= 20 ms; it includes half a poll interval on average).\n",
		jobRate/syncRate, len(r.idleSync), median(r.idleSync).Milliseconds(), median(r.idleJobs).Milliseconds(),
		r.pollEvery, (median(r.idleJobs) - median(r.idleSync)).Milliseconds())
}
