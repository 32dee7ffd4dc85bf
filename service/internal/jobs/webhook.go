package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/metrics"
	"github.com/readocr/readocr/service/internal/output"
	"github.com/readocr/readocr/service/internal/telemetry"
	"github.com/readocr/readocr/service/internal/webhook"
)

// Callbacks go through an outbox in JetStream, not through the process that finished the job:
// the runner publishes the delivery to the stream READOCR_WEBHOOKS before it acknowledges the
// job, and any runner delivers it. A process killed at any point loses nothing: before the
// publish, the job is redelivered (its record says it is done, the publish is made then);
// after it, the delivery waits in the stream, and one taken by a process that dies is
// redelivered after the ack wait. Retries wait in the stream too (a negative acknowledgement
// with the schedule's delay), and a delivery that failed on the whole schedule goes to the
// stream READOCR_WEBHOOKS_DEAD (the dead letters, kept --job-ttl). Delivery is at least once:
// the webhook-id is the same on every attempt, for receivers to drop duplicates.

// Names of the outbox in JetStream.
const (
	outboxStream   = "READOCR_WEBHOOKS"
	outboxSubject  = "readocr.webhooks"
	outboxConsumer = "deliverers"
	deadStream     = "READOCR_WEBHOOKS_DEAD"
	deadSubject    = "readocr.webhooks.dead"
	deliverers     = 4 // deliveries one process makes at once
)

// The states of a callback, as GET /jobs/{id} shows them.
const (
	CallbackPending   = "pending"   // not tried yet
	CallbackRetrying  = "retrying"  // failed, tried again at next_attempt_at
	CallbackDelivered = "delivered" // the receiver answered 2xx
	CallbackStopped   = "stopped"   // the receiver answered 410 Gone: not tried again
	CallbackFailed    = "failed"    // failed on every attempt of the schedule, or refused: a dead letter
)

// Callback is the delivery of a job's callback.
type Callback struct {
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	LastStatus  int        `json:"last_status,omitempty"` // the receiver's HTTP status
	LastError   string     `json:"last_error,omitempty"`  // when no status came back
	LastAttempt *time.Time `json:"last_attempt_at,omitempty"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
}

// UnmarshalJSON also reads the boolean that records written before the outbox had.
func (c *Callback) UnmarshalJSON(b []byte) error {
	if string(b) == "true" || string(b) == "false" {
		*c = Callback{State: CallbackPending}
		return nil
	}
	type plain Callback
	return json.Unmarshal(b, (*plain)(c))
}

// delivery is a message in the outbox.
type delivery struct {
	ID   string          `json:"id"` // the webhook-id: one per job and final status
	Job  string          `json:"job"`
	URL  string          `json:"url"`
	Body json.RawMessage `json:"body"`
	Page bool            `json:"page,omitempty"` // a page event (callback_pages): the record's callback state is the final one's
}

// event is the body POSTed, in the structure Standard Webhooks recommends.
type event struct {
	Type      string    `json:"type"` // job.succeeded, job.failed
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		ID     string `json:"id"`
		Status Status `json:"status"`
		Error  *Error `json:"error,omitempty"`
	} `json:"data"`
}

// enqueueEvent puts a page event in the outbox (callback_pages), as the final callback is: a
// body of the same structure, the type page.done or page.failed, the page in data.
func (b *Broker) enqueueEvent(ctx context.Context, url string, ev Event, dedup string) error {
	body, _ := json.Marshal(struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			ID        string            `json:"id"`
			Status    Status            `json:"status"`
			Page      int               `json:"page"`
			PageError *output.PageError `json:"page_error,omitempty"`
		} `json:"data"`
	}{Type: ev.Type, Timestamp: time.Now().UTC().Truncate(time.Second), Data: struct {
		ID        string            `json:"id"`
		Status    Status            `json:"status"`
		Page      int               `json:"page"`
		PageError *output.PageError `json:"page_error,omitempty"`
	}{ev.Job.ID, ev.Status, ev.Page, ev.PageError}})
	d := delivery{ID: ev.Job.ID + "." + strings.ReplaceAll(dedup, "/", "."), Job: ev.Job.ID, URL: url, Body: body, Page: true}
	return b.publishDelivery(ctx, d)
}

// enqueueCallback puts job's callback in the outbox. Publishing it twice (a job redelivered
// after its process died between this and its acknowledgement) is one message: the stream drops
// a duplicate of the same id within its duplicate window.
func (b *Broker) enqueueCallback(ctx context.Context, url string, job Job) error {
	ev := event{Type: "job." + string(job.Status), Timestamp: time.Now().UTC().Truncate(time.Second)}
	ev.Data.ID, ev.Data.Status, ev.Data.Error = job.ID, job.Status, job.Error
	body, _ := json.Marshal(ev)
	d := delivery{ID: job.ID + "." + string(job.Status), Job: job.ID, URL: url, Body: body}
	return b.publishDelivery(ctx, d)
}

// publishDelivery puts d in the outbox with ctx's trace context in its headers, so that its
// delivery joins the job's trace and the receiver gets the job's traceparent.
func (b *Broker) publishDelivery(ctx context.Context, d delivery) error {
	m := nats.NewMsg(outboxSubject)
	m.Data, _ = json.Marshal(d)
	telemetry.InjectNATS(ctx, m)
	if _, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgID(d.ID)); err != nil {
		return unavailable(err)
	}
	return nil
}

func (b *Broker) setUpOutbox(ctx context.Context, replicas int) error {
	s, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: outboxStream, Subjects: []string{outboxSubject}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: 10 * time.Minute,
	})
	if err != nil {
		return err
	}
	_, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: outboxConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: b.cfg.WebhookTimeout + 5*time.Second,
		MaxDeliver: -1, MaxAckPending: -1, // the schedule decides when to stop
	})
	if err != nil {
		return err
	}
	_, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: deadStream, Subjects: []string{deadSubject}, Storage: jetstream.FileStorage, Replicas: replicas, MaxAge: b.cfg.TTL,
	})
	return err
}

// deliver makes one attempt at a callback.
func (r *Runner) deliver(ctx context.Context, msg jetstream.Msg) {
	var d delivery
	meta, err := msg.Metadata()
	if err != nil || json.Unmarshal(msg.Data(), &d) != nil || !validID(d.Job) {
		r.b.log.Error("not a callback message: dropped")
		msg.Term()
		return
	}
	attempt := int(meta.NumDelivered)
	log := r.b.log.With("job", d.Job, "attempt", attempt)
	ctx, span := telemetry.Consume(ctx, "webhook deliver", msg.Headers(), trace.WithAttributes(
		attribute.String(telemetry.JobID, d.Job), attribute.Int("readocr.webhook.attempt", attempt)))
	defer span.End()
	status, err := r.post(ctx, d)
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if ctx.Err() != nil { // this process is stopping: not the receiver's attempt
		msg.Nak()
		return
	}
	now := time.Now().UTC()
	cb := Callback{Attempts: attempt, LastStatus: status, LastAttempt: &now}
	if err != nil {
		cb.LastError = failure.MessageOf(err)
	}
	schedule := r.b.cfg.WebhookSchedule
	switch {
	case err == nil && status >= 200 && status < 300:
		cb.State = CallbackDelivered
	case err == nil && status == http.StatusGone:
		cb.State = CallbackStopped // Standard Webhooks: the receiver asks us to stop
	case failure.CodeOf(err) == failure.URLNotAllowed, failure.CodeOf(err) == failure.InvalidImageField, attempt > len(schedule):
		cb.State = CallbackFailed // a refused address stays refused
	default:
		next := now.Add(schedule[attempt-1])
		cb.State, cb.NextAttempt = CallbackRetrying, &next
	}
	if !d.Page {
		r.b.setCallback(d.Job, cb)
	}
	if cb.State != CallbackDelivered {
		telemetry.Fail(span, cmp.Or(err, fmt.Errorf("the receiver answered %d", status)))
	}
	switch cb.State {
	case CallbackDelivered:
		log.Info("callback delivered", "status", status)
		r.record.Delivery(metrics.Delivered)
		msg.Ack()
	case CallbackStopped: // not counted: the receiver asked to stop
		log.Info("callback stopped: the receiver answered 410 Gone")
		msg.Term()
	case CallbackFailed:
		log.Warn("callback failed: dead letter", "status", status, "err", errString(err))
		r.record.Delivery(metrics.Dead)
		r.b.deadLetter(d, cb)
		msg.Term()
	default:
		log.Warn("callback not delivered", "status", status, "err", errString(err), "retry_in", schedule[attempt-1].String())
		r.record.Delivery(metrics.Failed)
		msg.NakWithDelay(schedule[attempt-1])
	}
}

// post signs and sends d through the fetcher, so that a callback can reach no address an
// image URL could not.
func (r *Runner) post(ctx context.Context, d delivery) (int, error) {
	u, err := fetch.ParseURL(d.URL)
	if err != nil {
		return 0, err
	}
	h, err := r.b.signer.Sign(d.ID, time.Now(), d.Body)
	if err != nil {
		return 0, failure.Wrap(failure.Internal, err, "signing the callback")
	}
	h.Set("Content-Type", "application/json")
	telemetry.InjectHTTP(ctx, h) // traceparent: the receiver's work joins the job's trace
	ctx, cancel := context.WithTimeout(ctx, r.b.cfg.WebhookTimeout)
	defer cancel()
	return r.fetcher.Post(ctx, u, h, d.Body)
}

// setCallback records a delivery's state in its job's record (a job deleted meanwhile has
// none).
func (b *Broker) setCallback(id string, cb Callback) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 5 {
		rec, rev, err := getRecord(ctx, b, id)
		if err != nil {
			return
		}
		rec.Callback = &cb
		if _, err := updateRecord(ctx, b, rec, rev); !errors.Is(err, errChanged) {
			return
		}
	}
}

func (b *Broker) deadLetter(d delivery, cb Callback) {
	msg, _ := json.Marshal(struct {
		delivery
		Callback Callback `json:"callback"`
	}{d, cb})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.js.Publish(ctx, deadSubject, msg); err != nil {
		b.log.Error("callback dead letter not stored", "job", d.Job, "err", err.Error())
	}
}

// deliverLoop takes callbacks from the outbox until ctx ends.
func (r *Runner) deliverLoop(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		wait, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(1, jetstream.FetchContext(wait))
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				sleep(ctx, time.Second)
			}
			continue
		}
		for msg := range batch.Messages() {
			r.deliver(r.jobsCtx, msg)
		}
		cancel()
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// NewWebhookSigner is the signer of cfg's secrets (nil without any).
func newSigner(cfg Config) (*webhook.Signer, error) { return webhook.NewSigner(cfg.WebhookSecret) }
