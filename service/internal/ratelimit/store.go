package ratelimit

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// KeyValue is the part of a JetStream key-value bucket the limiter uses.
type KeyValue interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

// errConflict: the entry changed since it was read.
var errConflict = errors.New("ratelimit: entry changed")

// store is a map of small values with revisions, written by compare-and-set (revision 0: the
// entry does not exist yet).
type store interface {
	get(ctx context.Context, name string) ([]byte, uint64, error)
	put(ctx context.Context, name string, v []byte, rev uint64) error
	// cached returns the value and revision this process last wrote or read, if it has one:
	// a write with it saves the read when no other replica wrote since.
	cached(name string) ([]byte, uint64, bool)
}

type entry struct {
	v   []byte
	rev uint64
}

// kvStore is the shared store: a JetStream key-value bucket, with the revisions this process
// saw cached.
type kvStore struct {
	kv    KeyValue
	mu    sync.Mutex
	cache map[string]entry
}

func newKVStore(kv KeyValue) *kvStore { return &kvStore{kv: kv, cache: map[string]entry{}} }

func (s *kvStore) get(ctx context.Context, name string) ([]byte, uint64, error) {
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		s.remember(name, nil, 0)
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	s.remember(name, e.Value(), e.Revision())
	return e.Value(), e.Revision(), nil
}

func (s *kvStore) put(ctx context.Context, name string, v []byte, rev uint64) error {
	var n uint64
	var err error
	if rev == 0 {
		n, err = s.kv.Create(ctx, name, v)
	} else {
		n, err = s.kv.Update(ctx, name, v, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return errConflict
	case err != nil:
		return err
	}
	s.remember(name, v, n)
	return nil
}

func (s *kvStore) cached(name string) ([]byte, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cache[name]
	return e.v, e.rev, ok
}

func (s *kvStore) remember(name string, v []byte, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache[name] = entry{v, rev}
}

// memStore keeps the state in this process: without a broker, and while the shared store is
// unreachable.
type memStore struct {
	mu sync.Mutex
	m  map[string]entry
}

func newMemStore() *memStore { return &memStore{m: map[string]entry{}} }

func (s *memStore) get(_ context.Context, name string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[name]
	return e.v, e.rev, nil
}

func (s *memStore) put(_ context.Context, name string, v []byte, rev uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[name].rev != rev {
		return errConflict
	}
	s.m[name] = entry{v, rev + 1}
	return nil
}

func (s *memStore) cached(string) ([]byte, uint64, bool) { return nil, 0, false }
