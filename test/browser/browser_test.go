// Package browser_test drives the web page in a real browser (Debian's Chromium, headless,
// through chromedp) against the real service: an image read with its word boxes, a document
// followed to 100 %, a download, an error shown in words; screenshots of each are saved. The
// browser can reach loopback only, and a request to any other host fails the test.
package browser_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/readocr/readocr/client"
	"github.com/readocr/readocr/internal/testsupport/servicebin"
	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

var svc *servicebin.Service

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, _ := os.MkdirTemp("", "readocr-browser-")
	defer os.RemoveAll(dir)
	bin, err := servicebin.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		return 1
	}
	if svc, err = servicebin.Start(bin, filepath.Join(dir, "data"), "--workers", "2"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer svc.Stop()
	return m.Run()
}

// chromium is the browser's path: Debian's package.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("READOCR_REQUIRE_BROWSER") != "" {
		t.Fatal("Chromium is not installed (hack/install-deps.sh --test installs it)")
	}
	t.Skip("Chromium is not installed (hack/install-deps.sh --test installs it)")
	return ""
}

// session is one headless browser and its tab, with every request it made.
type session struct {
	t         *testing.T
	ctx       context.Context
	downloads string
	mu        sync.Mutex
	requests  []*network.Request
}

func newSession(t *testing.T) *session {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true), chromedp.Flag("metrics-recording-only", true),
		// Every request to another host goes to a closed port; loopback is not proxied
		// (Chromium's implicit bypass), so the service is the only thing the browser reaches.
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	s := &session{t: t, ctx: ctx, downloads: t.TempDir()}
	// The first call starts the browser (no timeout on it: it would stop the browser).
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			s.mu.Lock()
			s.requests = append(s.requests, e.Request)
			s.mu.Unlock()
		}
	})
	if err == nil {
		_, err = chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: s.downloads})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.checkLoopbackOnly)
	return s
}

// run runs the steps, with a screenshot and the end of the test on error.
func (s *session) run(steps ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		s.screenshot("failure-" + strings.ReplaceAll(s.t.Name(), "/", "-"))
		s.t.Fatal(err)
	}
}

// get runs an action that returns a value.
func get[T any](s *session, a chromedp.Action[T]) T {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](s *session, js string) T {
	s.t.Helper()
	return get(s, chromedp.Evaluate[T](js))
}

func text(s *session, css string) string {
	s.t.Helper()
	return get(s, chromedp.Text(chromedp.CSS(css)))
}

// offHost lists the requests that were not to loopback (blob: and data: URLs stay in the page).
func (s *session) offHost() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		u, err := url.Parse(r.URL)
		if err != nil {
			out = append(out, r.URL)
			continue
		}
		if u.Scheme == "blob" || u.Scheme == "data" {
			continue
		}
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			out = append(out, r.URL)
		}
	}
	return out
}

func (s *session) checkLoopbackOnly() {
	if off := s.offHost(); len(off) > 0 {
		s.t.Errorf("the page made requests to other hosts: %v", off)
	}
	s.mu.Lock()
	s.t.Logf("%d requests, all to the service", len(s.requests))
	s.mu.Unlock()
}

func (s *session) screenshot(name string) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir, err := servicebin.Artifacts("browser")
	if err != nil {
		s.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	os.WriteFile(p, buf, 0o644)
	s.t.Logf("screenshot: %s", p)
}

// open loads the page and waits for its languages.
func (s *session) open() {
	s.run(chromedp.Navigate(svc.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=lang]`)))
}

// choose picks a file for the page's file input and sends the form.
func (s *session) choose(path string) {
	s.run(chromedp.SetUploadFiles(chromedp.CSS(`#file`), []string{path}), chromedp.Click(chromedp.CSS(`#go`)))
}

func writeFile(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func decoded(t *testing.T, name string) image.Image {
	img, err := testdocs.Decode(testimages.Get(t, name).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// readJSON asks the service for format json of path, as the page does, through the client.
func readJSON(t *testing.T, path string, o client.Options) *client.Document {
	c, _ := client.New(svc.URL, "")
	o.Format = client.JSON
	res, err := c.Read(context.Background(), client.FromPath(path), o)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := res.Document()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// An image: the text shown, a box per word of the JSON (low-confidence ones marked), a word's
// confidence on hover, the searchable PDF downloaded.
func TestImageWithWordBoxes(t *testing.T) {
	s := newSession(t)
	var pngBytes bytes.Buffer
	png.Encode(&pngBytes, decoded(t, "eurotext.tif")) // English, German and French read as English: a word or so below 60 %
	path := writeFile(t, "eurotext.png", pngBytes.Bytes())
	want := readJSON(t, path, client.Options{})

	s.open()
	s.screenshot("1-page")
	s.run(chromedp.SetValue(chromedp.CSS(`#format`), "pdf"))
	s.choose(path)
	s.run(chromedp.WaitVisible(chromedp.CSS(`#result`)), chromedp.WaitVisible(chromedp.CSS(`#image`)))
	var boxes, low int
	got := text(s, `#text`)
	boxes = eval[int](s, `document.querySelectorAll('#boxes rect.word').length`)
	low = eval[int](s, `document.querySelectorAll('#boxes rect.word.low').length`)
	wantLow := 0
	for _, w := range want.Words {
		if w.Confidence < 60 {
			wantLow++
		}
	}
	if strings.TrimSpace(got) != strings.TrimSpace(want.Text) || boxes != len(want.Words) || low != wantLow || wantLow == 0 {
		t.Errorf("text %q; %d boxes (%d low), the JSON has %d words (%d below 60 %%)", got, boxes, low, len(want.Words), wantLow)
	}
	// Hover the first word: its confidence is shown.
	var x, y float64
	var tip string
	s.run(chromedp.ScrollIntoView(chromedp.CSS(`#page`)))
	x = eval[float64](s, `(() => { const r = document.querySelector('#boxes rect.word').getBoundingClientRect(); return r.x + r.width / 2; })()`)
	y = eval[float64](s, `(() => { const r = document.querySelector('#boxes rect.word').getBoundingClientRect(); return r.y + r.height / 2; })()`)
	s.run(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y), chromedp.WaitVisible(chromedp.CSS(`#tip`)))
	tip = text(s, `#tip`)
	w0 := want.Words[0]
	if wantTip := fmt.Sprintf("“%s” %v %%", w0.Text, w0.Confidence); tip != wantTip {
		t.Errorf("hover: %q, want %q", tip, wantTip)
	}
	// The chosen format was prepared with the result: its download is a searchable PDF.
	s.run(chromedp.WaitVisible(chromedp.CSS(`#download-pdf.ready`)), chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 2, 2))
	s.screenshot("2-image-result-with-boxes")
	s.run(chromedp.Click(chromedp.CSS(`#download-pdf`)))
	pdf := waitDownload(t, filepath.Join(s.downloads, "eurotext.pdf"))
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Errorf("download: %.20q", pdf)
	}
}

func waitDownload(t *testing.T, path string) []byte {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	t.Fatalf("no download %s (folder: %v)", path, entries)
	return nil
}

// A document goes through /jobs: the progress bar moves and reaches 100 %, and the page's
// boxes are those of the JSON's page.
func TestDocumentProgress(t *testing.T) {
	s := newSession(t)
	photo := decoded(t, "phototest.tif")
	pages := make([]image.Image, 8)
	for i := range pages {
		pages[i] = photo
	}
	path := writeFile(t, "scan-8p.pdf", testdocs.ScannedPDF(pages, 100))
	s.open()
	s.choose(path)
	var seen []int
	shot := false
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var value int
		var done bool
		value = eval[int](s, `(() => { const p = document.getElementById('progress'); return p.hasAttribute('value') ? Math.round(p.value) : -1; })()`)
		done = eval[bool](s, `!document.getElementById('result').hidden`)
		if len(seen) == 0 || seen[len(seen)-1] != value {
			seen = append(seen, value)
		}
		if !shot && value > 0 && value < 100 {
			s.screenshot("3-document-in-progress")
			shot = true
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result; progress %v", seen)
		}
	}
	var label string
	var value, options, boxes int
	label = text(s, `#progress-label`)
	value = eval[int](s, `document.getElementById('progress').value`)
	options = eval[int](s, `document.querySelectorAll('#page-select option').length`)
	boxes = eval[int](s, `document.querySelectorAll('#boxes rect.word').length`)
	t.Logf("progress seen: %v; %q", seen, label)
	if value != 100 || !strings.Contains(label, "8 of 8 pages read, 100 %") || !shot {
		t.Errorf("progress %d %q (in progress seen: %v)", value, label, shot)
	}
	first := readJSON(t, path, client.Options{Pages: "1"})
	if options != 8 || boxes != len(first.Pages[0].Words) {
		t.Errorf("%d pages in the selector, %d boxes on page 1; the JSON's page 1 has %d words", options, boxes, len(first.Pages[0].Words))
	}
	s.screenshot("4-document-result")
}

// A file the service cannot read: the error in words, with the service's code.
func TestErrorInWords(t *testing.T) {
	s := newSession(t)
	s.open()
	s.choose(writeFile(t, "notes.png", []byte("these are notes, not pixels\n")))
	var msg string
	s.run(chromedp.WaitVisible(chromedp.CSS(`#error`)))
	msg = text(s, `#error`)
	if !strings.Contains(msg, "This file is not an image or document the service reads") ||
		!strings.Contains(msg, "The service answered 415 unsupported_media_type") {
		t.Errorf("error shown: %q", msg)
	}
	s.screenshot("5-error")
	// No file chosen: said, and the focus goes back to the file field.
	s.open()
	var focused string
	s.run(chromedp.Click(chromedp.CSS(`#go`)), chromedp.WaitVisible(chromedp.CSS(`#error`)))
	msg = text(s, `#error`)
	focused = eval[string](s, `document.activeElement.id`)
	if !strings.Contains(msg, "Choose an image or a document first") || focused != "file" {
		t.Errorf("no file: %q, focus on %q", msg, focused)
	}
}

// Every control has a label; the key is kept in the tab's session storage and sent as a
// bearer token.
func TestLabelsAndKey(t *testing.T) {
	s := newSession(t)
	s.open()
	unlabeled := eval[[]string](s, `[...document.querySelectorAll('input, select, textarea')].filter(e => !e.labels || e.labels.length === 0).map(e => e.id || e.name)`)
	if len(unlabeled) > 0 {
		t.Errorf("controls without a label: %v", unlabeled)
	}
	s.run(chromedp.Click(chromedp.CSS(`#key-box summary`)), chromedp.SendKeys(chromedp.CSS(`#key`), "s3cret"), chromedp.Blur(chromedp.CSS(`#key`)),
		chromedp.Sleep(500*time.Millisecond))
	stored := eval[string](s, `sessionStorage.getItem('readocr.apiKey')`)
	sent := false
	s.mu.Lock()
	for _, r := range s.requests {
		if strings.HasSuffix(r.URL, "/languages") && (r.Headers["authorization"] == "Bearer s3cret" || r.Headers["Authorization"] == "Bearer s3cret") {
			sent = true
		}
	}
	s.mu.Unlock()
	if !sent {
		s.mu.Lock()
		for _, r := range s.requests {
			t.Logf("%s %v", r.URL, r.Headers)
		}
		s.mu.Unlock()
	}
	if stored != "s3cret" || !sent {
		t.Errorf("key stored %q, sent with /languages: %v", stored, sent)
	}
}

// The guard itself: a request to another host is seen, and fails at the closed proxy; and the
// page's policy stops its script from making one at all.
func TestOtherHostsAreSeenAndBlocked(t *testing.T) {
	s := newSession(t)
	s.open()
	result := get(s, chromedp.Evaluate[string](`fetch('http://example.com/x').then(() => 'reached', e => 'blocked: ' + e.message)`,
		chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(result, "blocked") || len(s.offHost()) != 0 {
		t.Errorf("a script's fetch to another host: %q, requests seen %v", result, s.offHost())
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Navigate("http://example.com/"))
	off := s.offHost()
	if err == nil || !strings.Contains(err.Error(), "ERR_PROXY_CONNECTION_FAILED") || len(off) == 0 {
		t.Fatalf("navigating to another host: %v; seen %v", err, off)
	}
	s.mu.Lock()
	s.requests = nil // seen, as it should be: not a failure of this test
	s.mu.Unlock()
}
