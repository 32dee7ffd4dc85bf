package apikey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Keyring is the current key set, read from a file and read again when the file changes. It
// is safe for concurrent use: a lookup reads the current set without a lock.
type Keyring struct {
	path   string
	log    *slog.Logger
	set    atomic.Pointer[Set]
	digest [sha256.Size]byte // of the file's content the set was read from
	failed [sha256.Size]byte // of the last content that did not parse (logged once)
	loaded atomic.Int64      // reloads that changed the set, for tests and metrics
}

// Load reads the key file at path. A missing or invalid file is an error: a service told to
// require keys must not start open.
func Load(path string, log *slog.Logger) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("API keys: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("API keys %s: %w", path, err)
	}
	k := &Keyring{path: path, log: log, digest: sha256.Sum256(data)}
	k.set.Store(s)
	return k, nil
}

// Lookup returns the key presented as secret, if the current set has it.
func (k *Keyring) Lookup(secret string) (*Key, bool) { return k.set.Load().Lookup(secret) }

// Len is how many keys the current set has.
func (k *Keyring) Len() int { return k.set.Load().Len() }

// Reloads counts the times the set changed since Load.
func (k *Keyring) Reloads() int64 { return k.loaded.Load() }

// Watch reads the file every interval until ctx ends and takes its new content when it
// parses. Kubernetes replaces a mounted Secret's files in place (an atomic symlink swap) about
// a minute after the Secret changes; reading the path follows the swap. A file that vanished
// or does not parse leaves the last good set in force (never an open service), and is logged.
func (k *Keyring) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.Reload()
		}
	}
}

// Reload reads the file once (Watch calls it).
func (k *Keyring) Reload() {
	data, err := os.ReadFile(k.path)
	if err != nil {
		k.log.Error("API keys: the key file cannot be read; the last keys stay in force", "path", k.path, "err", err.Error())
		return
	}
	d := sha256.Sum256(data)
	if bytes.Equal(d[:], k.digest[:]) || bytes.Equal(d[:], k.failed[:]) {
		return
	}
	s, err := Parse(data)
	if err != nil {
		k.failed = d
		k.log.Error("API keys: the key file changed but does not parse; the last keys stay in force", "path", k.path, "err", err.Error())
		return
	}
	before := k.set.Load().Len()
	k.set.Store(s)
	k.digest = d
	k.loaded.Add(1)
	k.log.Info("API keys reloaded", "path", k.path, "keys", s.Len(), "before", before)
}
