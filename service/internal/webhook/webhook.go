// Package webhook signs job callbacks as the Standard Webhooks specification says
// (https://www.standardwebhooks.com): headers webhook-id, webhook-timestamp and
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one signature per secret
// (space-separated) so that a receiver can move to a new secret while the old one still
// verifies. Signing is the specification's own Go library's; receivers use it (or any
// Standard Webhooks library) to verify.
package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The headers of a signed message, and the prefix of a secret in the specification's format.
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
	SecretPrefix    = "whsec_"
)

// Signer signs with every secret it has.
type Signer struct {
	hooks []*standardwebhooks.Webhook
}

// NewSigner takes a comma-separated list of secrets: "whsec_<base64>" as the specification
// writes them (what its libraries take), or any other string, used as its bytes (receivers
// then use the library's NewWebhookRaw). "" is no signer (nil, nil).
func NewSigner(list string) (*Signer, error) {
	var s Signer
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		var wh *standardwebhooks.Webhook
		var err error
		if strings.HasPrefix(v, SecretPrefix) {
			wh, err = standardwebhooks.NewWebhook(v)
		} else {
			wh, err = standardwebhooks.NewWebhookRaw([]byte(v))
		}
		if err != nil {
			return nil, fmt.Errorf("webhook secret %d: not base64 after %s", len(s.hooks)+1, SecretPrefix)
		}
		s.hooks = append(s.hooks, wh)
	}
	if len(s.hooks) == 0 {
		return nil, nil
	}
	return &s, nil
}

// Sign returns the headers of message id with body, sent at t.
func (s *Signer) Sign(id string, t time.Time, body []byte) (http.Header, error) {
	if s == nil {
		return nil, errors.New("webhook: no secret")
	}
	sigs := make([]string, 0, len(s.hooks))
	for _, wh := range s.hooks {
		sig, err := wh.Sign(id, t, body)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, sig)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(t.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h, nil
}

// NewSecret returns a random secret in the specification's format (32 bytes).
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}
