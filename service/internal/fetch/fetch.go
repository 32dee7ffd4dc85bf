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
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/readocr/readocr/service/internal/failure"
)

// Errors, each with its API code. Their messages never carry the resolver's or the target's
// address (the client chose the name, not what it resolves to inside our network).
var (
	ErrScheme     = failure.New(failure.UnsupportedURLScheme, "only http and https URLs can be fetched")
	ErrInvalid    = failure.New(failure.InvalidImageField, "the image URL is malformed")
	ErrNotAllowed = failure.New(failure.URLNotAllowed, "the URL's address is not allowed (loopback, private, link-local or reserved)")
	ErrTooLarge   = failure.New(failure.PayloadTooLarge, "the fetched image exceeds the size limit")
	ErrTimeout    = failure.New(failure.FetchTimeout, "fetching the image timed out")
	ErrFailed     = failure.New(failure.FetchFailed, "fetching the image failed")
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

// DefaultConfig is the fetcher's configuration unless flags say otherwise.
func DefaultConfig() Config {
	return Config{ConnectTimeout: 3 * time.Second, Timeout: 10 * time.Second, MaxBytes: 20 << 20, MaxRedirects: 3}
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
				return failure.Detail(ErrFailed, "more than %d redirects", cfg.MaxRedirects)
			}
			return checkScheme(req.URL)
		},
	}
	return f
}

// URL is an image URL that passed the checks made before any network traffic: http or https,
// with a host. Make one with ParseURL.
type URL struct{ u *url.URL }

// ParseURL parses raw and checks its scheme and host.
func ParseURL(raw string) (URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return URL{}, ErrInvalid
	}
	if err := checkScheme(u); err != nil {
		return URL{}, err
	}
	if u.Hostname() == "" {
		return URL{}, failure.Detail(ErrInvalid, "the URL has no host")
	}
	return URL{u}, nil
}

// Host is the URL's host name, for logs (never the path or query, which may carry tokens).
func (u URL) Host() string {
	if u.u == nil {
		return ""
	}
	return u.u.Hostname()
}

// Valid reports whether u was made by ParseURL.
func (u URL) Valid() bool { return u.u != nil }

// String is the whole URL, for storing it (a job's input): never log it.
func (u URL) String() string {
	if u.u == nil {
		return ""
	}
	return u.u.String()
}

func checkScheme(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return failure.Detail(ErrScheme, "not %.16q", u.Scheme)
	}
	return nil
}

// Get downloads u. Before the body is read, reserve is called with the number of bytes it may
// take (the announced length, or MaxBytes), so that the caller can account for them. The body
// is read up to MaxBytes; the server's Content-Type is ignored (the caller sniffs the bytes).
func (f *Fetcher) Get(ctx context.Context, u URL, reserve func(ctx context.Context, n int64) error) ([]byte, error) {
	if !u.Valid() {
		return nil, ErrInvalid
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.u.String(), nil)
	if err != nil {
		return nil, ErrInvalid
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	req.Header.Set("Accept", "image/*")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.classify(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, failure.Detail(ErrFailed, "the server answered %s", resp.Status)
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, failure.Detail(ErrTooLarge, "%d bytes announced, the limit is %d", resp.ContentLength, f.cfg.MaxBytes)
	}
	size := f.cfg.MaxBytes
	if resp.ContentLength >= 0 {
		size = resp.ContentLength
	}
	if reserve != nil {
		if err := reserve(ctx, size); err != nil {
			return nil, err
		}
	}
	// One buffer of the announced size: reading into a growing one would double it as it goes.
	buf := make([]byte, 0, min(size, f.cfg.MaxBytes)+1)
	for int64(len(buf)) <= f.cfg.MaxBytes {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // the server sent more than it announced
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, f.classify(ctx, err)
		}
	}
	if int64(len(buf)) > f.cfg.MaxBytes {
		return nil, failure.Detail(ErrTooLarge, "the limit is %d bytes", f.cfg.MaxBytes)
	}
	return buf, nil
}

// Post sends body to u with the same rules as Get (the address checks, time limits and
// redirects) and returns the status the server answered; its body is discarded. Webhooks go
// out this way, so a callback URL can reach no more than an image URL can.
func (f *Fetcher) Post(ctx context.Context, u URL, header http.Header, body []byte) (int, error) {
	if !u.Valid() {
		return 0, ErrInvalid
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, ErrInvalid
	}
	req.Header = header.Clone()
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, f.classify(ctx, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// classify turns transport errors into the package's errors with messages fit for the client:
// no resolver, proxy or peer addresses, which the standard library's messages carry. The
// cause is kept for logs.
func (f *Fetcher) classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return failure.FromContext(ctx, failure.FetchTimeout, "fetching the image")
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var (
		coded   *failure.Error
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		recErr  tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &coded):
		return err
	case errors.Is(err, ssrf.ErrProhibitedIP), errors.Is(err, ssrf.ErrProhibitedNetwork), errors.Is(err, ssrf.ErrInvalidHostPort):
		return failure.Wrap(failure.URLNotAllowed, err, "%s", ErrNotAllowed.Message)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return failure.Wrap(failure.FetchTimeout, err, "fetching the image timed out (fetch-timeout %v)", f.cfg.Timeout)
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return failure.Wrap(failure.FetchFailed, err, "the image host %q does not resolve", dnsErr.Name)
		}
		return failure.Wrap(failure.FetchFailed, err, "the image host %q could not be resolved", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return failure.Wrap(failure.FetchFailed, err, "the image host refused the connection")
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF):
		return failure.Wrap(failure.FetchFailed, err, "the image host closed the connection")
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &host):
		return failure.Wrap(failure.FetchFailed, err, "the image host's TLS certificate is not valid for it")
	case errors.As(err, &recErr):
		return failure.Wrap(failure.FetchFailed, err, "the image host does not speak TLS")
	}
	return failure.Wrap(failure.FetchFailed, err, "%s", ErrFailed.Message)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
