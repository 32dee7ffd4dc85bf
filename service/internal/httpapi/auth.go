package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/readocr/readocr/service/internal/apikey"
	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/jobs"
	"github.com/readocr/readocr/service/internal/ratelimit"
)

// API keys (optional): when a key file is configured, every route but the probes needs a key,
// sent as "Authorization: Bearer <key>" or "X-API-Key: <key>"; each route needs its scope; each
// key has its request rate and page quota. Without a key file, every client is served as
// before, and / and /readyz say so ("auth": "none").

// SetAuth turns API keys on (before serving). limits may be nil (no limits enforced).
func (s *Server) SetAuth(keys *apikey.Keyring, limits *ratelimit.Limiter) {
	s.keys, s.limits = keys, limits
}

// AuthMode is what / and /readyz say about authentication: "api_keys" or "none".
func (s *Server) AuthMode() string {
	if s.keys == nil {
		return "none"
	}
	return "api_keys"
}

const keyCtx ctxKey = 100

var (
	errNoKey = failure.New(failure.Unauthorized,
		"an API key is required: send it as Authorization: Bearer <key> or X-API-Key: <key>")
	errBadKey = failure.New(failure.Unauthorized, "the API key is not valid (unknown or revoked)")
)

// presented is the key a request carries: Authorization's Bearer token, else X-API-Key.
func presented(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return ""
	}
	return r.Header.Get("X-API-Key")
}

// authenticate lets a request through when it carries a valid key with scope (any key for
// ""), within the key's request rate. It answers 401, 403 or 429 otherwise.
func (s *Server) authenticate(scope apikey.Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.keys == nil {
				next.ServeHTTP(w, r)
				return
			}
			secret := presented(r)
			key, ok := s.keys.Lookup(secret)
			if !ok {
				reason, err := "unknown", errBadKey
				if secret == "" {
					reason, err = "missing", errNoKey
				}
				s.metrics.authFailures.WithLabelValues(reason).Inc()
				w.Header().Set("WWW-Authenticate", `Bearer realm="readocr"`)
				s.fail(w, r, err)
				s.drain(w, r)
				return
			}
			annotate(r, func(a *annotations) { a.Key = key.ID })
			s.metrics.keyRequests.WithLabelValues(key.ID).Inc()
			if scope != "" && !key.Has(scope) {
				s.metrics.authFailures.WithLabelValues("scope").Inc()
				w.Header().Set("WWW-Authenticate", `Bearer realm="readocr", error="insufficient_scope", scope="`+string(scope)+`"`)
				s.fail(w, r, failure.New(failure.Forbidden, "the key %s does not have the scope %s", key.ID, scope))
				s.drain(w, r)
				return
			}
			if s.limits != nil && key.Rate > 0 {
				w.Header().Set("RateLimit-Policy", ratelimit.PolicyField(key.Policy))
				res := s.limits.Take(r.Context(), key.ID, key.Policy)
				w.Header().Set("RateLimit", ratelimit.Item(ratelimit.PolicyRate, res))
				if !res.Allowed {
					s.refuse(w, r, key, res, failure.New(failure.RateLimited,
						"the key %s is over its rate of %g requests a second (bursts of %d)", key.ID, key.Rate, key.Burst))
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtx, key)))
		})
	}
}

// refuse answers 429 for a limit, with Retry-After. Like every refusal made before the body
// is read, it then reads the body away (drain) so that the client, still sending, gets it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, key *apikey.Key, res ratelimit.Result, err error) {
	s.metrics.limited.WithLabelValues(key.ID, res.Refused).Inc()
	w.Header().Set("Retry-After", strconv.FormatInt(max(1, ratelimit.Seconds(res.RetryAfter)), 10))
	s.fail(w, r, err)
	s.drain(w, r)
}

// keyOf is the request's key (nil with keys off).
func keyOf(r *http.Request) *apikey.Key {
	k, _ := r.Context().Value(keyCtx).(*apikey.Key)
	return k
}

// caller is who asks about jobs.
func caller(r *http.Request) jobs.Caller {
	k := keyOf(r)
	if k == nil {
		return jobs.Anyone
	}
	return jobs.Caller{Key: k.ID, Admin: k.Admin()}
}

// checkPages refuses (429) a request of a key whose page quota for the period is used up. The
// pages are counted after the request (countPages): one request may go past the quota by its
// own pages, never by another's.
func (s *Server) checkPages(w http.ResponseWriter, r *http.Request) bool {
	k := keyOf(r)
	if k == nil || s.limits == nil || k.Pages <= 0 {
		return true
	}
	w.Header().Set("RateLimit-Policy", ratelimit.PolicyField(k.Policy))
	res := s.limits.Pages(r.Context(), k.ID, k.Policy)
	w.Header().Add("RateLimit", ratelimit.Item(ratelimit.PolicyPages, res))
	if !res.Allowed {
		s.refuse(w, r, k, res, failure.New(failure.QuotaExceeded,
			"the key %s has read its %d pages for this period", k.ID, k.Pages))
		return false
	}
	return true
}

// countPages counts n pages read for the request's key, and gives the answer's RateLimit the
// pages left after them (the draft's remaining quota once this request is served; the check
// before it could only say what was left then). A fresh read: other replicas count too.
func (s *Server) countPages(w http.ResponseWriter, r *http.Request, n int) {
	k := keyOf(r)
	if k == nil || s.limits == nil || k.Pages <= 0 {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	s.limits.AddPages(ctx, k.ID, k.Period, n)
	left := s.limits.Pages(ctx, k.ID, k.Policy)
	items := []string{ratelimit.Item(ratelimit.PolicyPages, left)}
	for _, v := range w.Header().Values("RateLimit") {
		if !strings.HasPrefix(v, `"`+ratelimit.PolicyPages+`"`) {
			items = append(items, v) // the rate's item stays
		}
	}
	w.Header()["RateLimit"] = items
}

// owner is the request's key's id and the period of its page quota, for a job to count its
// pages when it ends (0: no quota).
func (s *Server) owner(r *http.Request) (string, time.Duration) {
	k := keyOf(r)
	if k == nil {
		return "", 0
	}
	if s.limits == nil || k.Pages <= 0 {
		return k.ID, 0
	}
	return k.ID, k.Period
}
