package apikey

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/service/internal/ratelimit"
)

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// A key made by New, its line pasted into a file, is found by its secret and by nothing else;
// the file's defaults fill the limits the line leaves out.
func TestNewLineParseLookup(t *testing.T) {
	secret, k, err := New("team-a", []Scope{ScopeOCR, ScopeJobs}, ratelimit.Policy{Rate: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, Prefix) || len(secret) != len(Prefix)+43 {
		t.Fatalf("secret %q", secret)
	}
	if strings.Contains(k.Line(), secret) {
		t.Fatal("the line carries the secret")
	}
	file := "defaults: {burst: 7, pages: 100, period: 1h}\nkeys:\n  " + k.Line() + "\n"
	s, err := Parse([]byte(file))
	if err != nil {
		t.Fatalf("%v\n%s", err, file)
	}
	got, ok := s.Lookup(secret)
	if !ok || got.ID != "team-a" || !got.Has(ScopeJobs) || got.Has(ScopeAdmin) || got.Admin() {
		t.Fatalf("lookup: %+v %v", got, ok)
	}
	if want := (ratelimit.Policy{Rate: 2, Burst: 7, Pages: 100, Period: time.Hour}); got.Policy != want {
		t.Errorf("policy %+v, want %+v", got.Policy, want)
	}
	for _, guess := range []string{"", secret[:len(secret)-1], secret + "x", strings.ToUpper(secret), strings.Repeat("a", MaxKeyLength+1)} {
		if _, ok := s.Lookup(guess); ok {
			t.Errorf("%q found", guess)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	const h = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for _, c := range []struct{ file, want string }{
		{"keys: [{id: a, sha256: " + h + ", scope: [ocr]}]", "field scope not found"},
		{"keys: [{id: a, sha256: " + h + "}]", "scopes: none given"},
		{"keys: [{id: a, sha256: " + h + ", scopes: [root]}]", `scope "root" is not one of`},
		{"keys: [{id: a, sha256: abc, scopes: [ocr]}]", "64 hex digits"},
		{"keys: [{id: 'a b', sha256: " + h + ", scopes: [ocr]}]", "id must be"},
		{"keys: [{id: a, sha256: " + h + ", scopes: [ocr]}, {id: a, sha256: " + strings.Repeat("0", 64) + ", scopes: [ocr]}]", "appears twice"},
		{"keys: [{id: a, sha256: " + h + ", scopes: [ocr]}, {id: b, sha256: " + h + ", scopes: [ocr]}]", "hash of another key"},
		{"keys: [{id: a, sha256: " + h + ", scopes: [ocr], rate: -1}]", "must not be negative"},
		{"keys: [{id: a, sha256: " + h + ", scopes: [ocr], period: 10ms}]", "at least 1s"},
		{"keys: {", "key file"},
	} {
		if _, err := Parse([]byte(c.file)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.file, err, c.want)
		}
	}
	// JSON is YAML; an empty file is a set of no keys (every request refused, never open).
	if s, err := Parse([]byte(`{"keys": [{"id": "a", "sha256": "` + h + `", "scopes": ["ocr"]}]}`)); err != nil || s.Len() != 1 {
		t.Errorf("JSON: %v", err)
	}
	if s, err := Parse(nil); err != nil || s.Len() != 0 {
		t.Errorf("empty: %v", err)
	}
}

// Revocation needs no restart: the key's line removed from the file, the next reload refuses
// it; a file that no longer parses, or vanishes, leaves the last keys in force.
func TestKeyringReloadsAndRevokes(t *testing.T) {
	a, ka, _ := New("a", []Scope{ScopeOCR}, ratelimit.Policy{})
	b, kb, _ := New("b", []Scope{ScopeOCR}, ratelimit.Policy{})
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.yaml")
	write := func(s string) {
		// As Kubernetes updates a mounted Secret: a new file, then an atomic rename.
		tmp := filepath.Join(dir, "new")
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("keys:\n  " + ka.Line() + "\n  " + kb.Line() + "\n")
	if _, err := Load(filepath.Join(dir, "missing.yaml"), quiet()); err == nil {
		t.Fatal("a missing key file was accepted")
	}
	kr, err := Load(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go kr.Watch(ctx, 10*time.Millisecond)
	if _, ok := kr.Lookup(a); !ok {
		t.Fatal("key a not found")
	}
	write("keys:\n  " + kb.Line() + "\n")
	waitFor(t, func() bool { _, ok := kr.Lookup(a); return !ok }, "key a revoked")
	if _, ok := kr.Lookup(b); !ok {
		t.Fatal("key b lost in the reload")
	}
	n := kr.Reloads()
	write("keys: [")
	time.Sleep(100 * time.Millisecond)
	os.Remove(path)
	time.Sleep(100 * time.Millisecond)
	if _, ok := kr.Lookup(b); !ok || kr.Reloads() != n {
		t.Fatal("a broken or missing file changed the keys")
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

// BenchmarkLookup is the cost of authenticating one request: hash and look up.
func BenchmarkLookup(b *testing.B) {
	secret, k, _ := New("a", []Scope{ScopeOCR}, ratelimit.Policy{})
	lines := "keys:\n  " + k.Line() + "\n"
	for i := range 999 { // a thousand keys in the file
		_, ki, _ := New("k"+strconv.Itoa(i), []Scope{ScopeOCR}, ratelimit.Policy{})
		lines += "  " + ki.Line() + "\n"
	}
	s, err := Parse([]byte(lines))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok := s.Lookup(secret); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkGuess is a guesser's view: keys with 0 and with all but the last character right.
// Both are hashed before anything is compared, so the time does not depend on the prefix
// (ocrbench -auth measures the same over HTTP, 10,000 attempts each).
func BenchmarkGuess(b *testing.B) {
	secret, k, _ := New("a", []Scope{ScopeOCR}, ratelimit.Policy{})
	s, _ := Parse([]byte("keys:\n  " + k.Line() + "\n"))
	wrong := []byte(secret)
	for i := len(Prefix); i < len(wrong); i++ {
		wrong[i] ^= 1
	}
	for _, c := range []struct {
		name  string
		guess string
	}{
		{"right=prefix-only", string(wrong)},
		{"right=all-but-last", secret[:len(secret)-1] + string(secret[len(secret)-1]^1)},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, ok := s.Lookup(c.guess); ok {
					b.Fatal("found")
				}
			}
		})
	}
}
