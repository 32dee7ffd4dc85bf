package jobs

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// States follows the jobs' records as they change (a watch on their bucket, from every record
// there at the start), so that the metrics can say how many jobs are in each state without
// reading every record at each scrape. It holds an id, a state and a time per job kept
// (--job-ttl): a few dozen bytes a job.
type States struct {
	watch jetstream.KeyWatcher
	ttl   time.Duration

	mu   sync.Mutex
	jobs map[string]jobState
}

type jobState struct {
	status  Status
	written time.Time // the record's last write: the bucket drops it TTL later, unseen by a watch
}

// AllStatuses are the states a job can be in, in the order a job goes through them.
var AllStatuses = []Status{Queued, Running, Succeeded, SucceededWithErrors, Failed, Canceled}

// WatchStates starts following the records; Stop ends it.
func (b *Broker) WatchStates(ctx context.Context) (*States, error) {
	w, err := b.records.WatchAll(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	s := &States{watch: w, ttl: b.cfg.TTL, jobs: map[string]jobState{}}
	go s.follow(w.Updates())
	return s, nil
}

func (s *States) follow(updates <-chan jetstream.KeyValueEntry) {
	for e := range updates {
		if e == nil || !validID(e.Key()) { // nil: the initial records are all in; other keys: results, idempotency keys
			continue
		}
		var r struct {
			Status Status `json:"status"`
		}
		s.mu.Lock()
		if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &r) == nil && r.Status != "" {
			s.jobs[e.Key()] = jobState{r.Status, e.Created()}
		} else {
			delete(s.jobs, e.Key()) // deleted (DELETE /jobs/{id}) or purged
		}
		s.mu.Unlock()
	}
}

// Counts returns how many jobs are in each state (every state, 0 included).
func (s *States) Counts() map[string]int {
	out := make(map[string]int, len(AllStatuses))
	for _, st := range AllStatuses {
		out[string(st)] = 0
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, j := range s.jobs {
		if s.ttl > 0 && now.Sub(j.written) > s.ttl { // expired from the bucket: a watch sees no delete
			delete(s.jobs, id)
			continue
		}
		out[string(j.status)]++
	}
	return out
}

// Stop ends the watch.
func (s *States) Stop() { s.watch.Stop() }
