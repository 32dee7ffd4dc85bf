package web

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestWantsPage(t *testing.T) {
	for accept, want := range map[string]bool{
		"": false, "*/*": false, "application/json": false, // curl, scripts, the original clients
		"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8": true, // Chromium, Firefox
		"text/html":                         true,
		"application/json, text/html;q=0.5": false,
		"text/html;q=0.5, application/json": false,
		"text/html, */*":                    false, // a tie goes to the API
		"text/html;q=0":                     false,
		"application/xhtml+xml":             true,
		"text/html;q=x, */*":                false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if got := WantsPage(r); got != want {
			t.Errorf("Accept %q: page %v, want %v", accept, got, want)
		}
	}
}

// The page loads nothing from another host: every URL in its files is this origin's, and the
// policy says so to the browser too (the browser test checks the requests themselves).
func TestAssetsAreSelfContained(t *testing.T) {
	if len(Files()) != 3 {
		t.Errorf("files %v", Files())
	}
	remote := regexp.MustCompile(`(?i)(src|href|url)\s*[=(]\s*["']?(https?:)?//`)
	for name, a := range assets {
		if m := remote.FindString(string(a.body)); m != "" {
			t.Errorf("%s refers to another host: %s", name, m)
		}
		if strings.Contains(string(a.body), "style=") || (name == "index.html" && strings.Contains(string(a.body), "<script>")) {
			t.Errorf("%s has inline style or script (the policy forbids it)", name)
		}
	}
	w := httptest.NewRecorder()
	ServePage(w, httptest.NewRequest(http.MethodGet, "/", nil))
	h := w.Result().Header
	if !strings.HasPrefix(h.Get("Content-Security-Policy"), "default-src 'self';") || h.Get("X-Content-Type-Options") != "nosniff" ||
		h.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(w.Body.String(), `<script src="/ui/app.js" defer>`) {
		t.Errorf("page: %v %.200s", h, w.Body.String())
	}
	// Revalidation by ETag.
	r := httptest.NewRequest(http.MethodGet, Prefix+"app.js", nil)
	r.Header.Set("If-None-Match", assets["app.js"].etag)
	w = httptest.NewRecorder()
	Serve("app.js")(w, r)
	if w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", w.Code)
	}
}
