package fetch

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
)

// get parses raw and fetches it, as the pipeline does.
func get(ctx context.Context, f *Fetcher, raw string) ([]byte, error) {
	u, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return f.Get(ctx, u, nil)
}

// is reports whether err carries want's code.
func is(err error, want *failure.Error) bool { return err != nil && failure.CodeOf(err) == want.Code }

func testConfig() Config {
	return Config{ConnectTimeout: time.Second, Timeout: 2 * time.Second, MaxBytes: 1000, MaxRedirects: 2, UserAgent: "readocr-test"}
}

func imageServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/img", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html") // a lie: the caller must not care
		w.Write([]byte("IMAGEBYTES"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 5000)))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 50 {
			w.Write([]byte(strings.Repeat("x", 100)))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Minute):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/to-img", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/img", http.StatusFound) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestGetAllowPrivate(t *testing.T) {
	srv := imageServer(t)
	cfg := testConfig()
	cfg.AllowPrivate = true
	f := New(cfg)
	ctx := context.Background()

	body, err := get(ctx, f, srv.URL+"/img")
	if err != nil || string(body) != "IMAGEBYTES" {
		t.Fatalf("Get /img = %q, %v", body, err)
	}
	body, err = get(ctx, f, srv.URL+"/to-img")
	if err != nil || string(body) != "IMAGEBYTES" {
		t.Fatalf("Get /to-img = %q, %v", body, err)
	}
	tests := []struct {
		path string
		want *failure.Error
	}{
		{"/big", ErrTooLarge},
		{"/big-chunked", ErrTooLarge},
		{"/slow", ErrTimeout},
		{"/missing", ErrFailed},
		{"/loop", ErrFailed},
		{"/to-file", ErrScheme},
	}
	for _, tt := range tests {
		start := time.Now()
		_, err := get(ctx, f, srv.URL+tt.path)
		if !is(err, tt.want) {
			t.Errorf("Get %s: error = %v, want %v", tt.path, err, tt.want)
		}
		// Generous for a noisy machine; without the timeout /slow would take a minute.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Get %s took %v, far beyond the 2s timeout", tt.path, d)
		}
	}
}

func TestGetRefusesInternalTargets(t *testing.T) {
	srv := imageServer(t)
	f := New(testConfig())
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	targets := []string{
		srv.URL + "/img",                                                // 127.0.0.1
		"http://localhost:" + port + "/img",                             // a name that resolves to loopback
		"http://[::1]:" + port + "/img",                                 // IPv6 loopback
		"http://169.254.169.254/latest/meta-data/",                      // cloud metadata
		"http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/", // private
		"http://100.64.0.1/",                         // CGNAT
		"http://224.0.0.1/",                          // multicast
		"http://0.0.0.0:" + port + "/img",            // unspecified
		"http://[::ffff:127.0.0.1]:" + port + "/img", // IPv4-mapped loopback
	}
	for _, u := range targets {
		_, err := get(context.Background(), f, u)
		if !is(err, ErrNotAllowed) {
			t.Errorf("Get %s: error = %v, want ErrNotAllowed", u, err)
		}
	}
}

func TestGetRefusesSchemes(t *testing.T) {
	f := New(testConfig())
	// (No name that needs DNS here: tests send no traffic off this machine.)
	for _, u := range []string{"file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "javascript:alert(1)", "/relative.png", "http:///nohost"} {
		_, err := get(context.Background(), f, u)
		if !is(err, ErrScheme) && !is(err, ErrInvalid) {
			t.Errorf("Get %s: error = %v, want ErrScheme or ErrInvalid", u, err)
		}
	}
}

// A redirect is dialled like the first hop: with only 127.0.0.1 allowed, a redirect to
// 127.0.0.2 (the same loopback interface, a different address) is refused.
func TestRedirectTargetIsRechecked(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	inner := &httptest.Server{Listener: other, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("SECRET"))
	})}}
	inner.Start()
	defer inner.Close()
	outer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/", http.StatusFound)
	}))
	defer outer.Close()

	cfg := testConfig()
	cfg.AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	body, err := get(context.Background(), New(cfg), outer.URL)
	if !is(err, ErrNotAllowed) {
		t.Fatalf("redirect to 127.0.0.2: body %q, error %v, want ErrNotAllowed", body, err)
	}
}

// What the client reads never carries the resolver's or a peer's address, which the standard
// library's errors do.
func TestMessagesCarryNoAddresses(t *testing.T) {
	f := New(testConfig())
	dns := &url.Error{Op: "Get", URL: "http://x.example/", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "x.example", Server: "10.0.0.2:53", IsNotFound: true}}}
	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/", Err: &net.OpError{Op: "dial", Net: "tcp",
		Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, err := range []error{dns, refused} {
		got := f.classify(context.Background(), err)
		msg := failure.MessageOf(got)
		if strings.Contains(msg, "10.0.0.2") || strings.Contains(msg, "127.0.0.1") || failure.CodeOf(got) != failure.FetchFailed {
			t.Errorf("%v -> %s %q", err, failure.CodeOf(got), msg)
		}
	}
	// A real refused connection on loopback, end to end.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := testConfig()
	cfg.AllowPrivate = true
	_, err := get(context.Background(), New(cfg), "http://"+addr+"/x.png")
	if msg := failure.MessageOf(err); !is(err, ErrFailed) || strings.Contains(msg, "127.0.0.1") {
		t.Errorf("refused: %s %q", failure.CodeOf(err), msg)
	}
}

// Why a fetch ended, by the context's cause: the client left, or the request's time ran out.
func TestFetchEndsByCause(t *testing.T) {
	srv := imageServer(t)
	cfg := testConfig()
	cfg.AllowPrivate = true
	f := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := get(ctx, f, srv.URL+"/slow"); failure.CodeOf(err) != failure.ClientClosedRequest {
		t.Errorf("client gone during the fetch: %v", err)
	}
	ctx, cancel2 := context.WithTimeoutCause(context.Background(), 50*time.Millisecond, failure.ErrDeadline)
	defer cancel2()
	if _, err := get(ctx, f, srv.URL+"/slow"); failure.CodeOf(err) != failure.FetchTimeout {
		t.Errorf("request deadline during the fetch: %v", err)
	}
}

// The caller is told how many bytes to account for before the body is read: the announced
// length, or the limit when none is announced.
func TestReserveBeforeReading(t *testing.T) {
	srv := imageServer(t)
	cfg := testConfig()
	cfg.AllowPrivate = true
	f := New(cfg)
	var asked []int64
	reserve := func(_ context.Context, n int64) error { asked = append(asked, n); return nil }
	u, _ := ParseURL(srv.URL + "/img")
	if b, err := f.Get(context.Background(), u, reserve); err != nil || string(b) != "IMAGEBYTES" {
		t.Fatal(b, err)
	}
	u, _ = ParseURL(srv.URL + "/big-chunked")
	f.Get(context.Background(), u, reserve)
	if len(asked) != 2 || asked[0] != 10 || asked[1] != cfg.MaxBytes {
		t.Errorf("reserved %v, want [10 %d]", asked, cfg.MaxBytes)
	}
	busy := failure.New(failure.ServerBusy, "no memory")
	u, _ = ParseURL(srv.URL + "/img")
	if _, err := f.Get(context.Background(), u, func(context.Context, int64) error { return busy }); err != busy {
		t.Errorf("a refused reservation: %v", err)
	}
}
