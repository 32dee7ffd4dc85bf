package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The queue's series read a real JetStream work-queue stream: its length and its oldest
// message's age; with the broker away, the series are left out and the scrape still works.
func TestQueueFromStream(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "Q", Subjects: []string{"q"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	q := queue{state: StreamState(js, "Q"), now: func() time.Time { return now.Add(90 * time.Second) }}
	reg := prometheus.NewRegistry()
	reg.MustRegister(q)
	want := func(queued, age string) {
		t.Helper()
		exp := "# HELP readocr_jobs_oldest_queued_age_seconds Age of the oldest job in the queue (0 when it is empty).\n" +
			"# TYPE readocr_jobs_oldest_queued_age_seconds gauge\nreadocr_jobs_oldest_queued_age_seconds " + age + "\n" +
			"# HELP readocr_jobs_queued Jobs in the queue: waiting for a worker, or taken and not finished.\n" +
			"# TYPE readocr_jobs_queued gauge\nreadocr_jobs_queued " + queued + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp)); err != nil {
			t.Error(err)
		}
	}
	want("0", "0")
	for range 2 {
		if _, err := js.Publish(ctx, "q", []byte("job")); err != nil {
			t.Fatal(err)
		}
	}
	n, err := testutil.GatherAndCount(reg, "readocr_jobs_queued")
	if err != nil || n != 1 {
		t.Fatalf("%d series, %v", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		v := mf.GetMetric()[0].GetGauge().GetValue()
		switch mf.GetName() {
		case "readocr_jobs_queued":
			if v != 2 {
				t.Errorf("queued %v, want 2", v)
			}
		case "readocr_jobs_oldest_queued_age_seconds":
			if v < 89 || v > 91 { // queued about now; the clock read 90 s later
				t.Errorf("oldest age %v, want about 90", v)
			}
		}
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("broker away: %d series, err %v; want none and no error", n, err)
	}
}
