package jobs

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/readocr/readocr/service/internal/pipeline"
)

// The jobs by state follow the records on a real (embedded) JetStream server: a job queued
// before the watch started counts, a canceled job moves, a deleted one goes, an expired one
// goes although a watch sees no delete, and idempotency keys are not jobs.
func TestStates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	b, err := Open(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	j := &Jobs{b: b, check: func(pipeline.Input) error { return nil }}
	submit := func(key string) Job {
		t.Helper()
		job, err := j.Submit(ctx, Submission{Input: pipeline.Input{Source: "base64", Image: []byte("an image " + key)},
			SubmitOptions: SubmitOptions{IdempotencyKey: key}})
		if err != nil {
			t.Fatal(err)
		}
		return job
	}
	first := submit("order-1")
	s, err := b.WatchStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	want := func(what string, counts map[string]int) {
		t.Helper()
		full := map[string]int{}
		for _, st := range AllStatuses {
			full[string(st)] = counts[string(st)]
		}
		var got map[string]int
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got = s.Counts(); maps.Equal(got, full) {
				return
			}
		}
		t.Errorf("%s: %v, want %v", what, got, full)
	}
	want("a job queued before the watch", map[string]int{"queued": 1})
	submit("order-2")
	want("two queued", map[string]int{"queued": 2})
	if _, _, err := j.Cancel(ctx, first.ID, Anyone); err != nil {
		t.Fatal(err)
	}
	want("one canceled", map[string]int{"queued": 1, "canceled": 1})
	if _, deleted, err := j.Cancel(ctx, first.ID, Anyone); err != nil || !deleted {
		t.Fatalf("deleting the canceled job: %v %v", deleted, err)
	}
	want("the canceled one deleted", map[string]int{"queued": 1})
	s.ttl = time.Nanosecond // as if --job-ttl had passed: the bucket drops records unseen
	want("expired", map[string]int{})
}
