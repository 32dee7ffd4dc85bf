// Package web is the page people try the service with: GET / answers it to browsers (API
// clients keep the JSON index), and its script, style and icon are served under /ui/. Everything
// is embedded in the binary and nothing comes from another host; the page calls the public API
// only (/languages, /read_ocr, /jobs), from the browser.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is where the page's assets are served (routes.go mounts Assets there).
const Prefix = "/ui/"

// policy keeps the page to this origin: no inline script or style, no other host, no framing.
// Images may be blob: URLs (the chosen file, shown under its word boxes).
const policy = "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// types are the assets' media types (not the system's mime.types, which differ between hosts).
var types = map[string]string{".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
	".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets are the files of static/, read once.
var assets = func() map[string]asset {
	m := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct, ok := types[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no media type for its extension", p)
		}
		m[strings.TrimPrefix(p, "static/")] = asset{b, ct, `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // the embedded files are part of the binary: cannot happen
	}
	return m
}()

// WantsPage reports whether a request for / is from a browser: its Accept header names HTML
// and prefers it to JSON. Clients that take anything (curl's */*, no header) get the JSON index.
func WantsPage(r *http.Request) bool {
	html, json := -1.0, -1.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			html = max(html, q)
		case "application/json", "application/*", "*/*":
			json = max(json, q)
		}
	}
	return html > 0 && html > json
}

// ServePage writes the page.
func ServePage(w http.ResponseWriter, r *http.Request) { serve(w, r, "index.html") }

// Files lists the page's files served under Prefix (the page itself is served at /).
func Files() []string {
	var names []string
	for name := range assets {
		if name != "index.html" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Serve serves the file name of Files.
func Serve(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { serve(w, r, name) }
}

func serve(w http.ResponseWriter, r *http.Request, name string) {
	a := assets[name]
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", policy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // revalidated by ETag: a new binary's page is seen at once
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
