package metrics

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueState is the jobs' queue as the broker sees it.
type QueueState struct {
	Queued uint64    // jobs in the stream: waiting, or taken and not acknowledged
	Oldest time.Time // when the oldest of them was queued (zero: none)
}

// queueTimeout bounds one scrape's look at the queue: a broker that does not answer costs the
// scrape its queue series, not the scrape.
const queueTimeout = 2 * time.Second

var (
	queuedDesc = prometheus.NewDesc("readocr_jobs_queued", "Jobs in the queue: waiting for a worker, or taken and not finished.", nil, nil)
	oldestDesc = prometheus.NewDesc("readocr_jobs_oldest_queued_age_seconds", "Age of the oldest job in the queue (0 when it is empty).", nil, nil)
)

// queue reads the queue at each scrape.
type queue struct {
	state func(context.Context) (QueueState, error)
	now   func() time.Time
}

func (q queue) Describe(ch chan<- *prometheus.Desc) { ch <- queuedDesc; ch <- oldestDesc }

func (q queue) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	s, err := q.state(ctx)
	if err != nil {
		return // no queue series this time; an alert on their absence says the broker is away
	}
	age := 0.0
	if s.Queued > 0 && !s.Oldest.IsZero() {
		age = max(q.now().Sub(s.Oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}

// WatchQueue exports the jobs' queue (its length and its oldest job's age), read from state at
// each scrape.
func (w *Work) WatchQueue(state func(context.Context) (QueueState, error)) {
	w.reg.MustRegister(queue{state: state, now: time.Now})
}

// StreamState reads a JetStream work-queue stream as a queue: its messages and its first's time.
func StreamState(js jetstream.JetStream, stream string) func(context.Context) (QueueState, error) {
	return func(ctx context.Context) (QueueState, error) {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return QueueState{}, err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return QueueState{}, err
		}
		return QueueState{Queued: info.State.Msgs, Oldest: info.State.FirstTime}, nil
	}
}

var jobsDesc = prometheus.NewDesc("readocr_jobs", "Jobs kept (--job-ttl), by state: queued, running, succeeded, succeeded_with_errors, failed, canceled.", []string{"state"}, nil)

// jobStates reports the jobs by state at each scrape.
type jobStates func() map[string]int

func (j jobStates) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (j jobStates) Collect(ch chan<- prometheus.Metric) {
	for state, n := range j() {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), state)
	}
}

// WatchJobStates exports the jobs by state, counted by counts at each scrape (every state, 0
// included, so that a panel or an alert finds each series from the start).
func (w *Work) WatchJobStates(counts func() map[string]int) {
	w.reg.MustRegister(jobStates(counts))
}
