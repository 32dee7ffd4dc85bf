package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/readocr/readocr/service/internal/output"
)

// Events: what happens to a job, as it happens (GET /jobs/{id}/events, Server-Sent Events).
// Each is a message of a limits stream, one subject per job, kept as long as the job's record;
// its stream sequence is the event's id, so a client that reconnects with Last-Event-ID gets
// the events after it, none twice, none lost.

const (
	eventsStream  = "READOCR_EVENTS"
	eventsSubject = "readocr.events." // + job id
)

// The event types.
const (
	EventPageDone   = "page.done"
	EventPageFailed = "page.failed"
	EventJobDone    = "job.done"
)

// Event is one event: the job as it stands after it (the client's Job), with the page it is
// about. ID is the stream sequence.
type Event struct {
	ID   uint64 `json:"-"`
	Type string `json:"-"`
	Job
	Page      int               `json:"page,omitempty"`
	PageError *output.PageError `json:"page_error,omitempty"`
}

type storedEvent struct {
	Type string `json:"type"`
	Event
}

func (b *Broker) setUpEvents(ctx context.Context, replicas int) error {
	_, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: eventsStream, Subjects: []string{eventsSubject + "*"}, Storage: jetstream.FileStorage, Replicas: replicas,
		MaxAge: b.cfg.TTL + time.Hour, Duplicates: 2 * time.Minute,
	})
	return err
}

// emit publishes an event of job id (dedup: one per page and one job.done, within the stream's
// duplicate window), and queues it for the job's callback when it asked for page events.
// Events are best effort: a job does not fail for want of one (the record has the truth).
func (b *Broker) emit(ctx context.Context, req request, ev Event, dedup string) {
	data, _ := json.Marshal(storedEvent{Type: ev.Type, Event: ev})
	if _, err := b.js.Publish(ctx, eventsSubject+req.ID, data, jetstream.WithMsgID(req.ID+"/"+dedup)); err != nil {
		b.log.Warn("job event not published", "job", req.ID, "event", ev.Type, "err", err)
	}
	if req.CallbackURL != "" && req.CallbackPages && ev.Type != EventJobDone {
		if err := b.enqueueEvent(ctx, req.CallbackURL, ev, dedup); err != nil {
			b.log.Warn("page callback not queued", "job", req.ID, "err", err)
		}
	}
}

// pageEvent is the event of a page checkpointed.
func pageEvent(t pageTask, pageErr *output.PageError, rec record) Event {
	ev := Event{Type: EventPageDone, Job: rec.view(), Page: t.Page.Number, PageError: pageErr}
	if pageErr != nil {
		ev.Type = EventPageFailed
	}
	return ev
}

func pageDedup(i int) string { return "page/" + strconv.Itoa(i) }

const jobDoneDedup = "done"

// Events sends job id's events after the one numbered after (0: from the first) to send, as
// they happen, until the job is done, ctx ends or send fails. A job that is done and has no
// events (they expired, or it ended before it had any) gets one job.done of its record.
func (j *Jobs) Events(ctx context.Context, id string, c Caller, after uint64, heartbeat time.Duration, send func(*Event) error) error {
	rec, _, err := j.get(ctx, id, c)
	if err != nil {
		return err
	}
	subj := eventsSubject + id
	stream, err := j.b.js.Stream(ctx, eventsStream)
	if err != nil {
		return unavailable(err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) && rec.Status.Done() {
		return send(&Event{Type: EventJobDone, Job: rec.view()})
	}
	if err == nil && last.Sequence <= after && rec.Status.Done() {
		return nil // seen everything
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := j.b.js.OrderedConsumer(ctx, eventsStream, cfg)
	if err != nil {
		return unavailable(err)
	}
	if err := send(nil); err != nil { // the stream is open: the client knows at once
		return err
	}
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchMaxWait(heartbeat))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
			if err := send(nil); err != nil { // a comment: the connection lives
				return err
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return unavailable(err)
		}
		var ev storedEvent
		if json.Unmarshal(msg.Data(), &ev) != nil {
			continue
		}
		meta, _ := msg.Metadata()
		ev.Event.Type = ev.Type
		if meta != nil {
			ev.ID = meta.Sequence.Stream
		}
		if err := send(&ev.Event); err != nil {
			return err
		}
		if ev.Type == EventJobDone {
			return nil
		}
	}
	return nil
}
