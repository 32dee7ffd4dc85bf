package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

func init() {
	for _, ct := range []string{"text/css", "text/javascript", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// GET / is the JSON index for API clients and the page for browsers; the page's files are
// served under /ui/, and the answers hold to the contract.
func TestIndexPageForBrowsers(t *testing.T) {
	h := newHarness(t, options{workers: 1})
	get := func(path, accept string) response {
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		return h.do(req)
	}
	for _, accept := range []string{"", "*/*", "application/json"} {
		if r := get("/", accept); r.status != 200 || r.json(t)["API Documentation"] != "/openapi.yaml" || r.header.Get("Vary") != "Accept" {
			t.Errorf("Accept %q: %d %v %.100s", accept, r.status, r.header, r.body)
		}
	}
	chromium := "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	r := get("/", chromium)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.body), "<title>readocr") || !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("browser: %d %v %.100s", r.status, r.header, r.body)
	}
	for path, ct := range map[string]string{"/ui/app.js": "text/javascript", "/ui/app.css": "text/css", "/ui/icon.svg": "image/svg+xml"} {
		if r := get(path, chromium); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), ct) || len(r.body) == 0 {
			t.Errorf("%s: %d %v", path, r.status, r.header)
		}
	}
	for _, path := range []string{"/ui/index.html", "/ui/nope.js", "/ui/"} {
		if r := get(path, chromium); r.status != 404 || r.errorCode(t) != "not_found" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}
