package jobs

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The signature a receiver computes with openssl:
//
//	printf '1700000000.{"id":"X","status":"succeeded"}' | openssl dgst -sha256 -hmac s3cret
func TestSignMatchesOpenSSL(t *testing.T) {
	got := Sign("s3cret", time.Unix(1700000000, 0), []byte(`{"id":"X","status":"succeeded"}`))
	want := "t=1700000000,v1=49740c56edcd578b4b49654a4bf70b056a0b47e4884d879ad54e6636a14f6019"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// Two embedded servers on one data directory would corrupt it: the second process is refused.
func TestDataDirectoryIsLocked(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	b, err := Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "in use by another readocr") {
		t.Fatalf("second broker on the same directory: %v", err)
	}
	b.Close()
	b2, err := Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	b2.Close()
}

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{
		"MPSUELQ3MWBRRYQM4U62AIZOYU": true, "": false, "key.abc": false, "../x": false, "a*": false,
		"ABC>": false, strings.Repeat("A", 65): false, "abc": false,
	} {
		if validID(id) != ok {
			t.Errorf("validID(%q) = %v", id, !ok)
		}
	}
}
