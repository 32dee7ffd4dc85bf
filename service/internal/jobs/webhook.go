package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
)

// SignatureHeader carries a callback's signature: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" with the webhook secret>", as Stripe signs its webhooks. The receiver checks the
// HMAC and refuses a timestamp older than a few minutes (a replay).
const SignatureHeader = "Readocr-Signature"

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// notify posts {"id", "status"} to the job's callback URL, through the fetcher (so it can
// reach no address an image URL could not), until the receiver answers 2xx: retried with
// backoff (1 s, 2 s, 4 s, ...) WebhookRetries times in all. Each try is signed anew.
func (r *Runner) notify(rawURL string, job Job) {
	u, err := fetch.ParseURL(rawURL)
	if err != nil {
		return
	}
	body, _ := json.Marshal(map[string]any{"id": job.ID, "status": job.Status})
	log := r.b.log.With("job", job.ID, "callback_host", u.Host())
	r.webhooks.Add(1)
	go func() {
		defer r.webhooks.Done()
		wait := time.Second
		for try := 1; try <= max(r.b.cfg.WebhookRetries, 1); try++ {
			h := http.Header{}
			h.Set("Content-Type", "application/json")
			h.Set(SignatureHeader, Sign(r.b.cfg.WebhookSecret, time.Now(), body))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			status, err := r.fetcher.Post(ctx, u, h, body)
			cancel()
			if err == nil && status >= 200 && status < 300 {
				log.Info("callback delivered", "try", try)
				return
			}
			log.Warn("callback not delivered", "try", try, "status", status, "err", err)
			if failure.CodeOf(err) == failure.URLNotAllowed {
				return // an address the rules refuse stays refused
			}
			time.Sleep(wait)
			wait *= 2
		}
	}()
}
