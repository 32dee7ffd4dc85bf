package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/readocr/readocr/service/internal/failure"
)

// Idempotency keys, as draft-ietf-httpapi-idempotency-key-header says: the first request with a
// key queues a job; a retry with the same key and the same request gets that job (202, again);
// the same key with a different request is refused (422: answering with the first job would
// give the client another input's text); a retry while the first is still being queued gets
// 409. Keys are per API key (two clients may use the same one) and last as long as the job's
// record (--job-ttl).

// MaxIdempotencyKey is the longest idempotency key, in bytes.
const MaxIdempotencyKey = 200

var (
	// ErrKeyLength is an idempotency key over MaxIdempotencyKey.
	ErrKeyLength  = failure.New(failure.BadRequest, "the idempotency key is longer than 200 bytes")
	errKeyControl = failure.New(failure.BadRequest, "the idempotency key has control characters")
	errKeyReused  = failure.New(failure.IdempotencyKeyReused,
		"this idempotency key was used for a different request: use a new key for a new request")
	errKeyInUse = failure.New(failure.IdempotencyKeyInUse,
		"a request with this idempotency key is still being queued: retry in a moment")
)

// inFlight is how long a key may name a job whose record does not exist yet before the first
// request is taken for dead (its process stopped between the two writes) and the key reused.
const inFlight = time.Minute

// idempotency is the entry kept for a key: the job it made and the request's fingerprint.
type idempotency struct {
	Job         string `json:"job"`
	Fingerprint string `json:"fp"`
}

func idempotencyName(owner, key string) string {
	id := key // without API keys: the name keys had before they were per API key
	if owner != "" {
		id = owner + "\x00" + key
	}
	sum := sha256.Sum256([]byte(id))
	return "key." + hex.EncodeToString(sum[:])
}

// fingerprint is what makes two submissions the same request: the input (its bytes' hash, or
// its URL), every option and the callback. The way the image came (JSON or multipart) does not
// count.
func fingerprint(s Submission) string {
	h := sha256.New()
	img := sha256.Sum256(s.Input.Image)
	opts, _ := json.Marshal(s.Input.Options)
	for _, part := range [][]byte{[]byte(s.Input.URL.String()), img[:], opts, []byte(s.CallbackURL)} {
		h.Write([]byte{byte(len(part) >> 8), byte(len(part))})
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// submitOnce queues s unless its idempotency key already made a job.
func (j *Jobs) submitOnce(ctx context.Context, s Submission) (Job, error) {
	if len(s.IdempotencyKey) > MaxIdempotencyKey {
		return Job{}, ErrKeyLength
	}
	if strings.ContainsFunc(s.IdempotencyKey, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return Job{}, errKeyControl
	}
	name := idempotencyName(s.Owner, s.IdempotencyKey)
	mine := idempotency{Job: rand.Text(), Fingerprint: fingerprint(s)}
	value, _ := json.Marshal(mine)
	for range 3 {
		rev, err := j.b.records.Create(ctx, name, value)
		if err == nil {
			return j.enqueueHolding(ctx, mine.Job, s, name, rev)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Job{}, unavailable(err)
		}
		e, err := j.b.records.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile (the first request failed): try again
		} else if err != nil {
			return Job{}, unavailable(err)
		}
		var first idempotency
		if json.Unmarshal(e.Value(), &first) != nil {
			first.Job = string(e.Value()) // written before fingerprints: the job id alone
		}
		if first.Fingerprint != "" && first.Fingerprint != mine.Fingerprint {
			return Job{}, errKeyReused
		}
		rec, _, err := getRecord(ctx, j.b, first.Job)
		switch {
		case err == nil:
			return rec.view(), nil
		case !errors.Is(err, ErrNotFound):
			return Job{}, err
		case time.Since(e.Created()) < inFlight:
			return Job{}, errKeyInUse
		}
		// The first request never queued its job (or the job was deleted): the key is free.
		rev, err = j.b.records.Update(ctx, name, value, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		} else if err != nil {
			return Job{}, unavailable(err)
		}
		return j.enqueueHolding(ctx, mine.Job, s, name, rev)
	}
	return Job{}, errKeyInUse
}

// enqueueHolding queues the job of a key this request holds, and frees the key if that fails.
func (j *Jobs) enqueueHolding(ctx context.Context, id string, s Submission, name string, rev uint64) (Job, error) {
	job, err := j.enqueue(ctx, id, s)
	if err != nil {
		j.b.records.Delete(context.WithoutCancel(ctx), name, jetstream.LastRevision(rev))
	}
	return job, err
}
