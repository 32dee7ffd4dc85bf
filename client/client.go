// Package client is a Go client of the readocr API (service/api/openapi.yaml): /read_ocr, the
// jobs API and /languages. It sends the API key when it has one, waits out 429 and 503 answers
// for as long as their Retry-After says, and follows a job by its events when the service
// offers them (GET /jobs/{id}/events) and by polling otherwise. `readocr ocr` is built on it.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults of the Client's settings.
const (
	DefaultMaxRetries   = 8           // 429/503 answers waited out for one request
	DefaultMaxRetryWait = time.Minute // the longest one wait, whatever Retry-After says
	DefaultPollInterval = 250 * time.Millisecond
	maxPollInterval     = time.Second // polls slow down to this for long jobs
	maxErrorBody        = 64 << 10    // an error body larger than this is not read whole
)

// Client talks to one readocr service. Its fields may be changed before first use; it is safe
// for concurrent use after that.
type Client struct {
	// HTTP sends the requests (default: a client with no overall timeout: documents take minutes).
	HTTP *http.Client
	// MaxRetries is how many 429 or 503 answers with a Retry-After one request waits out.
	MaxRetries int
	// MaxRetryWait caps each wait.
	MaxRetryWait time.Duration
	// PollInterval is the first interval between polls of a job (it grows to a second).
	PollInterval time.Duration
	// OnRetry, if set, is told of each wait, before it.
	OnRetry func(err *Error, wait time.Duration)

	base     *url.URL
	key      string
	noEvents atomic.Bool // the service answered 404 to /jobs/{id}/events for a job it has
}

// New returns a client of the service at baseURL (e.g. http://localhost:4000). key, if not
// empty, is sent as "Authorization: Bearer <key>".
func New(baseURL, key string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("service URL %q: want http(s)://host[:port]", baseURL)
	}
	return &Client{HTTP: &http.Client{}, MaxRetries: DefaultMaxRetries, MaxRetryWait: DefaultMaxRetryWait,
		PollInterval: DefaultPollInterval, base: u, key: key}, nil
}

// URL is the service's base URL.
func (c *Client) URL() string { return c.base.String() }

// Error is an answer other than 2xx: the service's JSON error, or what stood in its place.
type Error struct {
	Status     int
	Code       string // the service's stable code; empty when the body was not its JSON error
	Message    string
	RequestID  string
	RetryAfter time.Duration // from the Retry-After header, 0 without one
}

func (e *Error) Error() string {
	if e.Status == 0 { // a job's error: its status is its result's
		return e.Code + ": " + e.Message
	}
	if e.Code == "" {
		return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// AsError returns err's *Error, if it has one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// request is one API call; body, if not nil, makes its body afresh for each attempt.
type request struct {
	method, path string
	accept       string
	body         func() (io.ReadCloser, string, error) // body and its Content-Type
}

// do sends r, waiting out 429 and 503 answers that carry a Retry-After, and returns a 2xx
// response (its body to be closed by the caller) or an error (*Error for other statuses).
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		apiErr := readError(resp)
		retryable := (apiErr.Status == http.StatusTooManyRequests || apiErr.Status == http.StatusServiceUnavailable) &&
			apiErr.RetryAfter > 0
		if !retryable || attempt >= c.MaxRetries {
			return nil, apiErr
		}
		wait := min(apiErr.RetryAfter, c.MaxRetryWait)
		if c.OnRetry != nil {
			c.OnRetry(apiErr, wait)
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(wait):
		}
	}
}

func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	var body io.ReadCloser
	var contentType string
	if r.body != nil {
		var err error
		if body, contentType, err = r.body(); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base.String()+r.path, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", "readocr-client")
	return c.HTTP.Do(req)
}

// readError reads a non-2xx answer into an *Error and closes its body.
func readError(resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body errorBody
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.RequestID = body.Error.Code, body.Error.Message, body.RequestID
		return e
	}
	e.Message = strings.TrimSpace(string(b))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "..."
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date. 0 when absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return max(time.Duration(s)*time.Second, time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), time.Millisecond)
	}
	return 0
}

// getJSON GETs path and decodes its JSON answer into v.
func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, accept: "application/json"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decode(resp, v)
}

func decode(resp *http.Response, v any) error {
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s %s: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// Languages is GET /languages.
func (c *Client) Languages(ctx context.Context) (Languages, error) {
	var l Languages
	err := c.getJSON(ctx, "/languages", &l)
	return l, err
}
