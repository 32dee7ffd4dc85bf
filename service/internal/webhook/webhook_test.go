package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The specification's published test vector (its README and every library's tests).
func TestSpecVector(t *testing.T) {
	s, err := NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Get(HeaderSignature), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	if h.Get(HeaderID) != "msg_p5jXN8AQM9LWM0D4loKWxJek" || h.Get(HeaderTimestamp) != "1614265330" {
		t.Errorf("headers %v", h)
	}
}

// The same signature computed by hand from the specification's definition, for a raw secret:
// HMAC-SHA256 over "id.timestamp.body", base64.
func TestRawSecretByHand(t *testing.T) {
	s, _ := NewSigner("test-secret")
	h, _ := s.Sign("J1.succeeded", time.Unix(1700000000, 0), []byte(`{}`))
	mac := hmac.New(sha256.New, []byte("test-secret"))
	mac.Write([]byte("J1.succeeded.1700000000.{}"))
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); h.Get(HeaderSignature) != want {
		t.Errorf("signature %s, want %s", h.Get(HeaderSignature), want)
	}
}

// Rotation: two secrets, two signatures; a receiver holding either verifies, one holding
// neither does not; a message older than the library's tolerance (5 minutes) is refused.
func TestRotationAndTolerance(t *testing.T) {
	oldS, newS := NewSecret(), NewSecret()
	s, err := NewSigner(newS + ", " + oldS)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"job.succeeded"}`)
	h, _ := s.Sign("J1.succeeded", time.Now(), body)
	if n := len(strings.Fields(h.Get(HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures, want 2: %s", n, h.Get(HeaderSignature))
	}
	for _, secret := range []string{oldS, newS} {
		wh, _ := standardwebhooks.NewWebhook(secret)
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("a receiver with one of the secrets: %v", err)
		}
	}
	other, _ := standardwebhooks.NewWebhook(NewSecret())
	if other.Verify(body, h) == nil {
		t.Error("verified with another secret")
	}
	stale, _ := s.Sign("J1.succeeded", time.Now().Add(-6*time.Minute), body)
	wh, _ := standardwebhooks.NewWebhook(newS)
	if err := wh.Verify(body, stale); err == nil {
		t.Error("a message 6 minutes old verified")
	}
	if err := wh.Verify([]byte(`{"type":"job.failed"}`), h); err == nil {
		t.Error("a changed body verified")
	}
}

func TestNewSignerRefuses(t *testing.T) {
	if s, err := NewSigner(" , "); s != nil || err != nil {
		t.Errorf("no secret: %v %v", s, err)
	}
	if _, err := NewSigner("whsec_!!!"); err == nil {
		t.Error("a whsec_ secret that is not base64 accepted")
	}
	var none *Signer
	if _, err := none.Sign("x", time.Now(), nil); err == nil {
		t.Error("signed without a secret")
	}
}
