package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/metrics"
)

// jobsStream is the jobs' work-queue stream (package jobs names it so). Its first message is
// the oldest job not yet finished.
const jobsStream = "READOCR_JOBS"

// queueState reads the jobs' queue for the metrics, on a connection of its own to the broker's
// server: read-only, from outside package jobs (a Broker method could give it instead). The
// returned func closes the connection.
func queueState(b *jobs.Broker) (func(context.Context) (metrics.QueueState, error), func(), error) {
	nc, err := b.Connect()
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return metrics.StreamState(js, jobsStream), nc.Close, nil
}

// watchJobs exports the jobs' queue (length, oldest) and the jobs by state in work's metrics.
// The returned func stops it.
func watchJobs(ctx context.Context, b *jobs.Broker, work *metrics.Work) (func(), error) {
	state, closeState, err := queueState(b)
	if err != nil {
		return nil, err
	}
	states, err := b.WatchStates(ctx)
	if err != nil {
		closeState()
		return nil, err
	}
	work.WatchQueue(state)
	work.WatchJobStates(states.Counts)
	return func() { states.Stop(); closeState() }, nil
}
