// Package apikey authenticates API clients by keys listed in a key file: each key's id, the
// SHA-256 of the key (never the key), its scopes and its limits. The file is YAML (JSON is
// YAML too), one key per line if you like:
//
//	defaults: {rate: 5, burst: 10, pages: 10000, period: 24h}
//	keys:
//	  - {id: team-a, sha256: 9f86d0...0f00a08, scopes: [ocr, jobs]}
//	  - {id: ops, sha256: 60303a...c1b2d3e, scopes: [admin], rate: 50}
//
// A presented key is hashed, then looked up by its hash and compared in constant time: the
// time an answer takes depends on the hash, which a guesser cannot steer character by
// character, not on how much of the key was right. Keys are 256-bit random values, so a fast
// hash is safe (nothing to brute-force) and costs a microsecond, not the milliseconds of a
// password hash. Keyring re-reads the file when it changes (a mounted Kubernetes Secret is
// replaced in place), so a key is revoked by removing its line, without a restart.
package apikey

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/readocr/readocr/service/internal/ratelimit"
)

// Scope is what a key may do.
type Scope string

// The scopes: ocr is POST /read_ocr, jobs is /jobs and its sub-resources, admin is every route
// and every key's jobs. The index, /languages and the contract need a valid key of any scope.
const (
	ScopeOCR   Scope = "ocr"
	ScopeJobs  Scope = "jobs"
	ScopeAdmin Scope = "admin"
)

var scopes = []Scope{ScopeOCR, ScopeJobs, ScopeAdmin}

// Prefix starts every key, so that secret scanners and people recognise one.
const Prefix = "readocr_"

// MaxKeyLength bounds a presented key: longer is not a key, and is not hashed.
const MaxKeyLength = 256

// Key is one client's entry in the key file.
type Key struct {
	ID     string  `yaml:"id"`
	SHA256 string  `yaml:"sha256"`
	Scopes []Scope `yaml:"scopes,flow"`
	// Its limits; what it leaves unset comes from the file's defaults.
	ratelimit.Policy `yaml:",inline"`

	hash [sha256.Size]byte
}

// Has reports whether the key has scope s (admin has every scope).
func (k *Key) Has(s Scope) bool {
	return slices.Contains(k.Scopes, s) || slices.Contains(k.Scopes, ScopeAdmin)
}

// Admin reports whether the key may see every key's jobs.
func (k *Key) Admin() bool { return slices.Contains(k.Scopes, ScopeAdmin) }

// File is the key file's content.
type File struct {
	Defaults ratelimit.Policy `yaml:"defaults,omitempty"`
	Keys     []Key            `yaml:"keys"`
}

// Set is the keys of one version of the file, indexed by their hash.
type Set struct {
	byHash map[[sha256.Size]byte]*Key
}

// Len is how many keys the set has.
func (s *Set) Len() int { return len(s.byHash) }

// Lookup returns the key whose hash is the hash of secret.
func (s *Set) Lookup(secret string) (*Key, bool) {
	if len(secret) == 0 || len(secret) > MaxKeyLength {
		return nil, false
	}
	sum := sha256.Sum256([]byte(secret))
	k, ok := s.byHash[sum]
	if !ok {
		return nil, false
	}
	// The map found it by the whole digest already; the comparison is the rule, kept explicit.
	return k, subtle.ConstantTimeCompare(k.hash[:], sum[:]) == 1
}

var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Parse reads a key file, checking every entry; unknown fields are errors (a misspelt
// "scope:" must not leave a key without its scopes unnoticed).
func Parse(data []byte) (*Set, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := checkPolicy(f.Defaults); err != nil {
		return nil, fmt.Errorf("key file: defaults: %w", err)
	}
	s := &Set{byHash: make(map[[sha256.Size]byte]*Key, len(f.Keys))}
	ids := map[string]bool{}
	for i := range f.Keys {
		k := &f.Keys[i]
		if err := k.check(); err != nil {
			return nil, fmt.Errorf("key file: key %d (%q): %w", i+1, k.ID, err)
		}
		if ids[k.ID] {
			return nil, fmt.Errorf("key file: id %q appears twice", k.ID)
		}
		if _, dup := s.byHash[k.hash]; dup {
			return nil, fmt.Errorf("key file: key %q has the hash of another key", k.ID)
		}
		ids[k.ID] = true
		k.Policy = k.Policy.WithDefaults(f.Defaults)
		s.byHash[k.hash] = k
	}
	return s, nil
}

func (k *Key) check() error {
	if !validID.MatchString(k.ID) {
		return errors.New("id must be 1-64 characters of A-Z a-z 0-9 _ -")
	}
	h, err := hex.DecodeString(k.SHA256)
	if err != nil || len(h) != sha256.Size {
		return errors.New("sha256 must be the 64 hex digits of the key's SHA-256 (readocr key new prints it)")
	}
	copy(k.hash[:], h)
	if len(k.Scopes) == 0 {
		return fmt.Errorf("scopes: none given (%s)", scopeList())
	}
	for _, s := range k.Scopes {
		if !slices.Contains(scopes, s) {
			return fmt.Errorf("scope %q is not one of %s", s, scopeList())
		}
	}
	return checkPolicy(k.Policy)
}

func checkPolicy(p ratelimit.Policy) error {
	if p.Rate < 0 || p.Burst < 0 || p.Pages < 0 || p.Period < 0 {
		return errors.New("rate, burst, pages and period must not be negative")
	}
	if p.Period != 0 && p.Period < 1e9 {
		return errors.New("period must be at least 1s")
	}
	return nil
}

func scopeList() string {
	var s []string
	for _, sc := range scopes {
		s = append(s, string(sc))
	}
	return strings.Join(s, ", ")
}

// ParseScopes reads "ocr,jobs".
func ParseScopes(list string) ([]Scope, error) {
	var out []Scope
	for _, v := range strings.Split(list, ",") {
		s := Scope(strings.TrimSpace(v))
		if s == "" {
			continue
		}
		if !slices.Contains(scopes, s) {
			return nil, fmt.Errorf("scope %q is not one of %s", s, scopeList())
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scope given (%s)", scopeList())
	}
	return out, nil
}

// New makes a key for id: the key itself (shown once, never stored) and its entry, whose Line
// is what goes into the key file.
func New(id string, sc []Scope, p ratelimit.Policy) (string, Key, error) {
	var b [32]byte
	rand.Read(b[:])
	secret := Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	k := Key{ID: id, SHA256: hex.EncodeToString(sum[:]), Scopes: sc, Policy: p}
	if err := k.check(); err != nil {
		return "", Key{}, err
	}
	return secret, k, nil
}

// Line is the key's entry as one line of the key file's keys list.
func (k Key) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "- {id: %s, sha256: %s, scopes: [", k.ID, k.SHA256)
	for i, s := range k.Scopes {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	b.WriteString("]")
	if k.Rate > 0 {
		fmt.Fprintf(&b, ", rate: %g", k.Rate)
	}
	if k.Burst > 0 {
		fmt.Fprintf(&b, ", burst: %d", k.Burst)
	}
	if k.Pages > 0 {
		fmt.Fprintf(&b, ", pages: %d", k.Pages)
	}
	if k.Period > 0 {
		fmt.Fprintf(&b, ", period: %s", k.Period)
	}
	b.WriteString("}")
	return b.String()
}
