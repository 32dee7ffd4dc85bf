// Package fetch downloads an image named by a user-supplied URL without letting that URL reach
// what the server can reach and the user cannot (SSRF).
//
// Every connection, including each redirect hop, is checked on the IP address actually dialled
// (after DNS, so rebinding does not help) by code.dny.dev/ssrf, which tracks the IANA
// special-purpose registries: loopback, private, link-local (cloud metadata at 169.254.169.254),
// CGNAT, multicast, unspecified and the rest are refused. Environment proxies are ignored, since
// a proxy would dial on our behalf past that check.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"code.dny.dev/ssrf"
)

// Errors, each mapped to one HTTP status by the API layer.
var (
	ErrScheme     = errors.New("only http and https URLs can be fetched")
	ErrNotAllowed = errors.New("the URL's address is not allowed (loopback, private, link-local or reserved)")
	ErrTooLarge   = errors.New("the fetched image exceeds the size limit")
	ErrTimeout    = errors.New("fetching the image timed out")
	ErrFailed     = errors.New("fetching the image failed")
)

// Config sets the limits of a Fetcher.
type Config struct {
	ConnectTimeout time.Duration
	Timeout        time.Duration // whole fetch, headers and body
	MaxBytes       int64
	MaxRedirects   int
	AllowPrivate   bool           // allow every target, loopback and private included (tests, trusted networks)
	AllowCIDRs     []netip.Prefix // allow these otherwise refused networks, e.g. an internal image store
	UserAgent      string
}

// Fetcher downloads images. It is safe for concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
}

// New returns a Fetcher with its own connection pool.
func New(cfg Config) *Fetcher {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout}
	if !cfg.AllowPrivate {
		var v4, v6 []netip.Prefix
		for _, p := range cfg.AllowCIDRs {
			if p.Addr().Is4() {
				v4 = append(v4, p)
			} else {
				v6 = append(v6, p)
			}
		}
		dialer.Control = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...)).Safe
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConns:          32,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	f := &Fetcher{cfg: cfg}
	f.client = &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrFailed, cfg.MaxRedirects)
			}
			return checkScheme(req.URL)
		},
	}
	return f
}

// CheckURL parses raw and checks its scheme and host, before any network traffic.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	if err := checkScheme(u); err != nil {
		return nil, err
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: the URL has no host", ErrFailed)
	}
	return u, nil
}

func checkScheme(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w, not %q", ErrScheme, u.Scheme)
	}
	return nil
}

// Get downloads raw. The body is read up to MaxBytes; the server's Content-Type is ignored
// (the caller sniffs the bytes).
func (f *Fetcher) Get(ctx context.Context, raw string) ([]byte, error) {
	u, err := CheckURL(raw)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	req.Header.Set("Accept", "image/*")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%w: the server answered %s", ErrFailed, resp.Status)
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrTooLarge, resp.ContentLength, f.cfg.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return nil, classify(err)
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, f.cfg.MaxBytes)
	}
	return body, nil
}

// classify turns transport errors into the package's errors, keeping the cause in the text.
// The URL is left out: it may carry credentials or tokens in its query.
func classify(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	switch {
	case errors.Is(err, ErrScheme), errors.Is(err, ErrFailed):
		return err
	case errors.Is(err, ssrf.ErrProhibitedIP), errors.Is(err, ssrf.ErrProhibitedNetwork), errors.Is(err, ssrf.ErrInvalidHostPort):
		return fmt.Errorf("%w: %v", ErrNotAllowed, err)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return ErrTimeout
	}
	return fmt.Errorf("%w: %v", ErrFailed, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
