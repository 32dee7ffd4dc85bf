package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

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

	body, err := f.Get(ctx, srv.URL+"/img")
	if err != nil || string(body) != "IMAGEBYTES" {
		t.Fatalf("Get /img = %q, %v", body, err)
	}
	body, err = f.Get(ctx, srv.URL+"/to-img")
	if err != nil || string(body) != "IMAGEBYTES" {
		t.Fatalf("Get /to-img = %q, %v", body, err)
	}
	tests := []struct {
		path string
		want error
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
		_, err := f.Get(ctx, srv.URL+tt.path)
		if !errors.Is(err, tt.want) {
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
		_, err := f.Get(context.Background(), u)
		if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Get %s: error = %v, want ErrNotAllowed", u, err)
		}
	}
}

func TestGetRefusesSchemes(t *testing.T) {
	f := New(testConfig())
	for _, u := range []string{"http://2130706433/img" /* 127.0.0.1 as an integer: Go does not resolve it */, "file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/", "javascript:alert(1)", "/relative.png", "http:///nohost"} {
		_, err := f.Get(context.Background(), u)
		if !errors.Is(err, ErrScheme) && !errors.Is(err, ErrFailed) {
			t.Errorf("Get %s: error = %v, want ErrScheme or ErrFailed", u, err)
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
	body, err := New(cfg).Get(context.Background(), outer.URL)
	if !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("redirect to 127.0.0.2: body %q, error %v, want ErrNotAllowed", body, err)
	}
}
