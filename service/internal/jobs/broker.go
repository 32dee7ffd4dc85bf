// Package jobs is asynchronous OCR on NATS JetStream: POST /jobs queues what POST /read_ocr
// takes, workers read it through the same pipeline, and the result waits in the broker until
// it expires. JetStream holds everything: a work-queue stream of job ids (with a durable pull
// consumer, whose ack wait and in-progress acks redeliver a dead worker's job and whose
// MaxDeliver stops a job that kills every worker), a key-value bucket of job records, and an
// object store of inputs and results. By default the broker is embedded in the process (file
// storage under the data directory, which survives a restart); with a URL, an external NATS
// cluster serves every replica.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/readocr/readocr/service/internal/webhook"
)

// Names in JetStream.
const (
	streamName   = "READOCR_JOBS"
	subject      = "readocr.jobs"
	consumerName = "workers"
	recordBucket = "readocr_jobs"
	dataBucket   = "readocr_job_data"
)

// pagesConsumer takes page tasks (pages.go), after jobs (see Runner.take). Scaling on the
// backlog (KEDA: infra/keda.go) reads both consumers.
const pagesConsumer = "page-workers"

// Config is how jobs are kept and run.
type Config struct {
	NATSURL     string        // an external NATS cluster; "": embedded
	NATSWait    time.Duration // how long to wait at start for an external cluster to answer
	Replicas    int           // copies of each job in an external cluster (3 for a 3-server one)
	DataDir     string        // the embedded server's storage
	TTL         time.Duration // how long a finished job and its result are kept
	MaxQueued   int           // jobs waiting at most; more get 429 too_many_jobs
	AckWait     time.Duration // a worker silent this long is taken for dead: its job is redelivered
	MaxDeliver  int           // deliveries of one job; a job whose workers all died fails after these
	Timeout     time.Duration // the longest a job may run
	Concurrency int           // jobs this process runs at once (role worker or all)
	// WebhookSecret signs callbacks (comma-separated: one signature each, for rotation);
	// callbacks are refused without one. See webhook.NewSigner.
	WebhookSecret   string
	WebhookSchedule []time.Duration // waits before the retries of a callback the receiver did not take (2xx)
	WebhookTimeout  time.Duration   // one delivery attempt
	NATSAuth        NATSAuth        // credentials and TLS for NATSURL
	// Inputs up to MaxInline bytes travel in the stream's message, and results up to twice that
	// in the key-value bucket (one direct read each); larger ones go to the object store, in
	// chunks. NATS's largest message is 1 MiB by default (an input is base64 in the JSON).
	MaxInline int
	// A document of SplitPages pages or more is read as page tasks, spread over every worker
	// process (0: never); PageWindow of a job's tasks are queued at a time (pages.go).
	SplitPages int
	PageWindow int
}

// DefaultConfig is the configuration unless flags say otherwise.
func DefaultConfig() Config {
	return Config{DataDir: filepath.Join(os.TempDir(), "readocr-jobs"), TTL: 24 * time.Hour, MaxQueued: 10000, AckWait: 30 * time.Second,
		MaxDeliver: 3, Timeout: time.Hour, MaxInline: 256 << 10, NATSWait: time.Minute,
		WebhookSchedule: DefaultWebhookSchedule, WebhookTimeout: 10 * time.Second,
		SplitPages: DefaultSplitPages, PageWindow: DefaultPageWindow}
}

// The defaults of page tasks: see docs/benchmarks.md for the measurements behind them.
const (
	DefaultSplitPages = 4
	DefaultPageWindow = 8
)

// DefaultWebhookSchedule is the waits between a callback's attempts: nine attempts over about
// eight hours, then a dead letter.
var DefaultWebhookSchedule = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}

// Broker is the connection to JetStream, and the embedded server when there is one.
type Broker struct {
	ns      *server.Server // nil with an external server
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	records jetstream.KeyValue
	data    jetstream.ObjectStore
	log     *slog.Logger
	cfg     Config
	signer  *webhook.Signer // nil: no webhook secret, callbacks refused
	lock    *os.File        // the data directory's, held while the embedded server runs
}

// lockDir takes the data directory for this process: two JetStream servers writing the same
// files would corrupt them.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jobs data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "readocr.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("jobs data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("jobs data directory %s is in use by another readocr: give each its own --data-dir, or --jobs=false", dir)
	}
	return f, nil
}

// Open starts the embedded server (or connects to cfg.NATSURL) and makes the stream, its
// consumer and the buckets if they are not there yet.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Broker, error) {
	signer, err := newSigner(cfg)
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, log: log, signer: signer}
	opts := []nats.Option{nats.Name("readocr"), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "server", c.ConnectedUrlRedacted()) }),
	}
	if cfg.NATSURL != "" {
		auth, err := cfg.NATSAuth.options()
		if err != nil {
			return nil, err
		}
		opts = append(opts, auth...)
	}
	url := cfg.NATSURL
	if url == "" {
		lock, err := lockDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		b.lock = lock
		ns, err := server.NewServer(&server.Options{
			ServerName: "readocr-embedded", DontListen: true, JetStream: true, StoreDir: cfg.DataDir,
			NoSigs: true, NoLog: true,
		})
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("embedded NATS server: %w", err)
		}
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			ns.Shutdown()
			lock.Close()
			return nil, errors.New("embedded NATS server did not start in 10 s")
		}
		b.ns = ns
		opts = append(opts, nats.InProcessServer(ns))
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("connecting to NATS: %w", err)
		}
		b.nc = nc
		if err := b.setUp(ctx); err != nil {
			b.Close()
			return nil, err
		}
	} else if err := b.connect(ctx, url, opts); err != nil {
		return nil, err
	}
	where := "embedded, " + cfg.DataDir
	if b.ns == nil {
		where = b.nc.ConnectedUrlRedacted()
	}
	log.Info("jobs broker ready", "nats", where, "ttl", cfg.TTL.String(), "max_queued", cfg.MaxQueued)
	return b, nil
}

// connect reaches an external cluster and sets the stream up, retrying for cfg.NATSWait: in
// Kubernetes, NATS and readocr start together, and a cluster elects its JetStream leaders
// after its servers answer. A wrong URL is still an error at start, after that wait.
func (b *Broker) connect(ctx context.Context, url string, opts []nats.Option) error {
	deadline := time.Now().Add(b.cfg.NATSWait)
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(url, append(opts, nats.RetryOnFailedConnect(false))...)
		if refused(err) {
			return fmt.Errorf("connecting to NATS: %w (check --nats-user/--nats-password, --nats-nkey, --nats-creds)", err)
		}
		if err == nil {
			b.nc = nc
			setCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = b.setUp(setCtx)
			cancel()
			if err == nil {
				return nil
			}
			nc.Close()
			b.nc = nil
		} else {
			err = fmt.Errorf("connecting to NATS: %w", err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%w (waited %v)", err, b.cfg.NATSWait)
		}
		b.log.Warn("waiting for NATS", "url", url, "attempt", attempt, "err", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (b *Broker) setUp(ctx context.Context) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return err
	}
	b.js = js
	replicas := b.replicas()
	b.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: streamName, Subjects: []string{subject, pagesSubject + "*"}, Retention: jetstream.WorkQueuePolicy,
		MaxMsgs: int64(b.cfg.MaxQueued), Discard: jetstream.DiscardNew, Storage: jetstream.FileStorage,
		Replicas: replicas, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("jobs stream: %w", err)
	}
	// Two consumers of the work queue, by subject (a work queue's consumers may not overlap):
	// jobs, and page tasks.
	for name, filter := range map[string]string{consumerName: subject, pagesConsumer: pagesSubject + "*"} {
		_, err = b.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: name, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, AckWait: b.cfg.AckWait,
			MaxDeliver: b.cfg.MaxDeliver, MaxAckPending: -1,
		})
		if err != nil {
			return fmt.Errorf("jobs consumer %s: %w", name, err)
		}
	}
	b.records, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: recordBucket, TTL: b.cfg.TTL, History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return fmt.Errorf("jobs bucket: %w", err)
	}
	b.data, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: dataBucket, TTL: b.cfg.TTL, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return fmt.Errorf("jobs object store: %w", err)
	}
	if err := b.setUpEvents(ctx, replicas); err != nil {
		return fmt.Errorf("job events: %w", err)
	}
	if err := b.setUpOutbox(ctx, replicas); err != nil {
		return fmt.Errorf("callbacks outbox: %w", err)
	}
	return nil
}

// replicas is how many copies JetStream keeps of what this service stores.
func (b *Broker) replicas() int {
	if b.ns != nil {
		return 1
	}
	return max(b.cfg.Replicas, 1)
}

// KeyValue opens (making it if needed) another key-value bucket on the broker, with the
// service's storage and replicas, for state shared by the replicas (the rate limits). Its
// entries keep one revision and never expire.
func (b *Broker) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	return b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, History: 1, Storage: jetstream.FileStorage, Replicas: b.replicas(),
	})
}

// Connect opens another connection to the broker's server (for tools and tests: a worker
// elsewhere connects so).
func (b *Broker) Connect() (*nats.Conn, error) {
	if b.ns != nil {
		return nats.Connect("", nats.InProcessServer(b.ns))
	}
	auth, err := b.cfg.NATSAuth.options()
	if err != nil {
		return nil, err
	}
	return nats.Connect(b.cfg.NATSURL, auth...)
}

// Close drains the connection and stops the embedded server.
func (b *Broker) Close() {
	if b.nc != nil {
		b.nc.Drain()
		for i := 0; i < 50 && !b.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		b.nc.Close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.lock != nil {
		b.lock.Close() // releases the lock
	}
}

// Queued is how many jobs wait in the stream (not yet taken by a worker, or taken and not
// acknowledged).
func (b *Broker) Queued(ctx context.Context) (uint64, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}
