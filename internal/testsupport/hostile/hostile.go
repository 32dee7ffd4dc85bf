// Package hostile is a set of attacks on a running readocr, each with the answer it must get:
// files built to make a decoder loop or allocate, pages at the memory caps with every worker
// busy, documents (PDF pages at the cap, a page that renders for ever), many large bodies at
// once, clients that stall or never read. test/hostile runs them
// as tests (status, time and the service's peak memory under its limit); `make bench` runs
// them to report the peak memory of each.
package hostile

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/readocr/readocr/internal/testsupport/proctree"
	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// Target is the service under attack, started with the settings in Flags.
type Target struct {
	Base           string // http://host:port of the API
	PID            int    // the API process (its workers are its children)
	Workers        int
	MemoryLimit    int64 // --memory-limit
	PageMemory     int64 // a worker's share for a page, from the service's "memory" log line
	RequestTimeout time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	MaxImageBytes  int64
}

// Flags are the service settings the scenarios are written for.
func Flags(t Target) []string {
	return []string{"--workers", fmt.Sprint(t.Workers), "--memory-limit", fmt.Sprint(t.MemoryLimit),
		"--request-timeout", t.RequestTimeout.String(), "--write-timeout", t.WriteTimeout.String(),
		"--idle-timeout", t.IdleTimeout.String(),
		"--max-image-bytes", fmt.Sprint(t.MaxImageBytes), "--memory-wait", "2s", "--queue", "32",
		// The pages are sized for the image's models (eng and osd): a worker keeps memory for one
		// language's model, whatever else this machine has installed.
		"--max-languages", "1"}
}

// Outcome is what one scenario saw.
type Outcome struct {
	Statuses map[int]int    // HTTP status -> count (0: no response)
	Codes    map[string]int // error code -> count
	Texts    []string       // texts of 200 answers
	Took     time.Duration  // the slowest request's time
	PeakKiB  int64          // the service's largest resident memory (API and workers), sampled
	Note     string
	Errors   []string // why requests got no response (status 0)
}

// Scenario is one attack and the answer it must get.
type Scenario struct {
	Class string // the kind of attack
	Name  string
	Run   func(t Target) Outcome
	// Check returns what is wrong with the outcome ("" when nothing is).
	Check func(t Target, o Outcome) string
}

// Run runs s against t, sampling the service's memory meanwhile.
func Run(t Target, s Scenario) Outcome {
	stop := proctree.Peak(t.PID, 10*time.Millisecond)
	o := s.Run(t)
	o.PeakKiB = stop()
	return o
}

// All returns the scenarios, in the order of the hostile-inputs issue.
func All() []Scenario {
	jpg := testimages.Must("pyt_test.jpg").Bytes
	gif := testimages.Must("pyt_test.gif").Bytes
	return []Scenario{
		{"EXIF IFD cycle", "640x480 JPEG whose IFD0 -> IFD1 -> IFD0", one(func() []byte { return testimages.EXIFCycle(jpg, 1) }),
			want(200, "quick brown", 10*time.Second)},
		{"EXIF tag amplification", "JPEG with 5,000 tags of 60 KB each", one(func() []byte { return testimages.EXIFTagFlood(jpg, 5000, 1) }),
			want(200, "quick brown", 10*time.Second)},
		{"GIF frame beyond its screen", "100x100 screen, one 20000x20000 frame (real data)",
			one(func() []byte { return testimages.GIFFrameBeyondScreen(100, 20000, 20000) }), wantCode(413, "image_too_large", 5*time.Second)},
		{"GIF frames after the first", "640x480 frame, then two 20000x20000 frames",
			one(func() []byte { return testimages.GIFWithLaterFrames(gif, [2]int{20000, 20000}, [2]int{20000, 20000}) }),
			want(200, "quick brown", 10*time.Second)},
		{"decompression bomb", "PNG whose header claims 20000x20000", one(func() []byte { return testimages.PNGBombBytes(20000, 20000) }),
			wantCode(413, "image_too_large", 5*time.Second)},
		{"JPEG scan bomb", "JPEG of 1,000 scans", one(func() []byte { return testimages.JPEGScanBomb(1000) }),
			wantCode(422, "undecodable_image", 5*time.Second)},
		{"many large bodies", "16 JSON bodies of 25 MB at once", manyBodies(16, "json"), bodiesRefused},
		{"many large bodies", "16 multipart bodies of 20 MiB at once", manyBodies(16, "multipart"), bodiesRefused},
		{"pages at the cap, every worker busy", "a colour noise page at the cap on every worker", atCap(false), capPagesRead},
		{"pages at the cap, every worker busy", "a grayscale noise page at the cap on every worker", atCap(true), capPagesRead},
		{"pages at the cap", "a colour page just over the cap", overCap, wantCode(413, "image_too_large", 5*time.Second)},
		{"time limit", "6.8 Mpx of specks: layout analysis that cannot stop", specks, answeredAtLimit},
		{"documents", "a 6-page Letter PDF of noise at 300 DPI, on every worker at once", noisePDF, pdfPagesRead},
		{"documents", "a PDF page that renders for ever (nested forms, 200^4 rectangles)", slowPDF, stoppedByTimeOrMemory},
		{"documents", "a TIFF whose one page claims 100000x100000", one(func() []byte { return testdocs.TIFFClaiming(100000, 100000) }),
			wantCode(413, "image_too_large", 2*time.Second)},
		{"slow clients", "a body that stops arriving", stalledBody, answeredAtLimitWith(408, "request_timeout")},
		{"slow clients", "5 clients that never read their answers", neverRead, droppedAfterWriteTimeout},
		{"slow clients", "an X-Request-Id of 1,000 bytes", longRequestID, requestIDReplaced},
	}
}

// post sends one request and records it into o.
func post(o *Outcome, mu *sync.Mutex, req *http.Request) {
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	status, code, text := 0, "", ""
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		var m struct {
			Text  string
			Error struct{ Code string }
		}
		json.Unmarshal(body, &m)
		code, text = m.Error.Code, m.Text
	}
	mu.Lock()
	defer mu.Unlock()
	if o.Statuses == nil {
		o.Statuses, o.Codes = map[int]int{}, map[string]int{}
	}
	o.Statuses[status]++
	if code != "" {
		o.Codes[code]++
	}
	if status == 200 {
		o.Texts = append(o.Texts, text)
	}
	if err != nil {
		o.Errors = append(o.Errors, err.Error())
	}
	o.Took = max(o.Took, time.Since(start))
}

func jsonRequest(base string, img []byte) *http.Request {
	body := `{"image":"` + base64.StdEncoding.EncodeToString(img) + `"}`
	req, _ := http.NewRequest(http.MethodPost, base+"/read_ocr", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// one posts the image make returns, once.
func one(make func() []byte) func(Target) Outcome {
	return func(t Target) Outcome {
		var o Outcome
		post(&o, &sync.Mutex{}, jsonRequest(t.Base, make()))
		return o
	}
}

func want(status int, text string, within time.Duration) func(Target, Outcome) string {
	return func(_ Target, o Outcome) string {
		if o.Statuses[status] != 1 || len(o.Texts) != 1 || !strings.Contains(o.Texts[0], text) {
			return fmt.Sprintf("want one %d with %q, got %v %v", status, text, o.Statuses, o.Codes)
		}
		return within2(o, within)
	}
}

func wantCode(status int, code string, within time.Duration) func(Target, Outcome) string {
	return func(_ Target, o Outcome) string {
		if o.Statuses[status] != 1 || o.Codes[code] != 1 {
			return fmt.Sprintf("want one %d %s, got %v %v", status, code, o.Statuses, o.Codes)
		}
		return within2(o, within)
	}
}

func within2(o Outcome, d time.Duration) string {
	if o.Took > d {
		return fmt.Sprintf("took %v, want at most %v", o.Took, d)
	}
	return ""
}

// manyBodies sends n large bodies at once: random bytes (no image), so each is refused once
// read; what matters is that they cannot together take more memory than requests may hold.
func manyBodies(n int, kind string) func(Target) Outcome {
	return func(t Target) Outcome {
		var o Outcome
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var req *http.Request
				if kind == "json" {
					req = jsonRequest(t.Base, random(int(t.MaxImageBytes)*15/16, uint64(i)))
				} else {
					var buf bytes.Buffer
					mw := multipart.NewWriter(&buf)
					fw, _ := mw.CreateFormFile("image", "x.bin")
					fw.Write(random(int(t.MaxImageBytes), uint64(i)))
					mw.Close()
					req, _ = http.NewRequest(http.MethodPost, t.Base+"/read_ocr", &buf)
					req.Header.Set("Content-Type", mw.FormDataContentType())
				}
				post(&o, &mu, req)
			})
		}
		wg.Wait()
		return o
	}
}

func random(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] = 'x' // not a known format's magic
	return b
}

func bodiesRefused(t Target, o Outcome) string {
	for s, n := range o.Statuses {
		if s != 415 && s != 503 && s != 413 {
			return fmt.Sprintf("%d answers of %d (want 415 unsupported, 413, or 503 server_busy): %v", n, s, o.Codes)
		}
	}
	return ""
}

// noisePage is a w x h page of random noise, the costliest content for Tesseract's memory, as
// JPEG (colour) or PNG (grayscale).
func noisePage(w, h int, gray bool) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	var buf bytes.Buffer
	if gray {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = byte(r.Uint32())
		}
		png.Encode(&buf, img)
		return buf.Bytes()
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(r.Uint32())
		if i%4 == 3 {
			img.Pix[i] = 0xFF
		}
	}
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: 50})
	return buf.Bytes()
}

// side is the width of the largest square page of mp megapixels.
func side(mp float64) int {
	s := 1
	for float64((s+1)*(s+1)) <= mp*1e6 {
		s++
	}
	return s
}

// capPixels is the largest page of noise whose cost (ocr.PageCost: 16 MiB, 24 or 16 bytes a
// pixel, and the encoded bytes, ~0.45 a pixel for noise as JPEG at quality 50 and ~1 as
// grayscale PNG) fits in a worker's share.
func capPixels(t Target, gray bool) float64 {
	perPixel := 24 + 0.45
	if gray {
		perPixel = 16 + 1.0
	}
	return float64(t.PageMemory-16<<20) / perPixel * 0.98
}

// PageAtCap returns the largest page of noise a worker with pageMemory for a page admits, and
// its size.
func PageAtCap(pageMemory int64, gray bool) ([]byte, int) {
	s := side(capPixels(Target{PageMemory: pageMemory}, gray) / 1e6)
	return noisePage(s, s, gray), s
}

func atCap(gray bool) func(Target) Outcome {
	return func(t Target) Outcome {
		img, s := PageAtCap(t.PageMemory, gray)
		var o Outcome
		o.Note = fmt.Sprintf("%dx%d (%.1f MP), %.1f MB", s, s, float64(s*s)/1e6, float64(len(img))/1e6)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range t.Workers {
			wg.Go(func() { post(&o, &mu, jsonRequest(t.Base, img)) })
		}
		wg.Wait()
		return o
	}
}

// capPagesRead: every page at the cap is read (noise has no text) or, on a slow machine, stopped
// at the time limit; none is refused for memory and the service stays under its limit.
func capPagesRead(t Target, o Outcome) string {
	if o.Statuses[200]+o.Codes["ocr_timeout"] != t.Workers {
		return fmt.Sprintf("want %d pages read, got %v %v", t.Workers, o.Statuses, o.Codes)
	}
	return ""
}

func overCap(t Target) Outcome {
	s := side(float64(t.PageMemory)/24/1e6) + 8
	var o Outcome
	o.Note = fmt.Sprintf("%dx%d", s, s)
	post(&o, &sync.Mutex{}, jsonRequest(t.Base, noisePage(s, s, false)))
	return o
}

// noisePDF sends a Letter-size PDF of six pages of noise, the costliest content, rendered at
// the resolution the service picks to fit a worker's share: the document's pages run on every
// worker at once, each at the cap.
func noisePDF(t Target) Outcome {
	r := rand.New(rand.NewPCG(5, 6))
	img := image.NewGray(image.Rect(0, 0, 850, 1100)) // 100 DPI inside the PDF; rendered at up to 300
	for i := range img.Pix {
		img.Pix[i] = uint8(r.UintN(2) * 255)
	}
	pages := make([]image.Image, 6)
	for i := range pages {
		pages[i] = img
	}
	var o Outcome
	body, _ := json.Marshal(map[string]any{"image": base64.StdEncoding.EncodeToString(testdocs.ScannedPDF(pages, 100)), "format": "json"})
	req, _ := http.NewRequest(http.MethodPost, t.Base+"/read_ocr", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	post(&o, &sync.Mutex{}, req)
	return o
}

// pdfPagesRead: the PDF is read (noise has little text) or stopped at the time limit; never
// refused for memory, and the service stays under its limit.
func pdfPagesRead(t Target, o Outcome) string {
	if o.Statuses[200]+o.Codes["ocr_timeout"] != 1 {
		return fmt.Sprintf("want the PDF read, got %v %v", o.Statuses, o.Codes)
	}
	return ""
}

// slowPDF sends a PDF whose page PDFium renders for ever (rendering never looks at a stop
// flag), then a page: the first is stopped at the time limit or its memory share, its worker
// killed and replaced.
func slowPDF(t Target) Outcome {
	var o Outcome
	post(&o, &sync.Mutex{}, jsonRequest(t.Base, testdocs.SlowPDF(4, 200)))
	post(&o, &sync.Mutex{}, jsonRequest(t.Base, testimages.Must("phototest.tif").Bytes))
	return o
}

func specks(t Target) Outcome {
	var o Outcome
	post(&o, &sync.Mutex{}, jsonRequest(t.Base, testimages.SpecksBytes(2600, 2600, 20)))
	// The worker was killed: the next page is read all the same.
	post(&o, &sync.Mutex{}, jsonRequest(t.Base, testimages.Must("phototest.tif").Bytes))
	return o
}

func answeredAtLimit(t Target, o Outcome) string {
	if o.Codes["ocr_timeout"] != 1 || o.Statuses[200] != 1 {
		return fmt.Sprintf("want one 504 ocr_timeout then one 200, got %v %v", o.Statuses, o.Codes)
	}
	if o.Took > t.RequestTimeout+2*time.Second {
		return fmt.Sprintf("answered after %v, the limit is %v", o.Took, t.RequestTimeout)
	}
	return ""
}

// stoppedByTimeOrMemory: the page that renders for ever is stopped by whichever limit it meets
// first, the time limit (504) or its worker's memory share (413: PDFium's caches grow while it
// renders nested forms, and the worker is killed at its share); the page after it is read.
func stoppedByTimeOrMemory(t Target, o Outcome) string {
	if o.Codes["ocr_timeout"]+o.Codes["image_too_large"] != 1 || o.Statuses[200] != 1 {
		return fmt.Sprintf("want one 504 ocr_timeout or 413 image_too_large, then one 200, got %v %v", o.Statuses, o.Codes)
	}
	if o.Took > t.RequestTimeout+2*time.Second {
		return fmt.Sprintf("answered after %v, the limit is %v", o.Took, t.RequestTimeout)
	}
	return ""
}

func answeredAtLimitWith(status int, code string) func(Target, Outcome) string {
	return func(t Target, o Outcome) string {
		if o.Statuses[status] != 1 || o.Codes[code] != 1 {
			return fmt.Sprintf("want one %d %s, got %v %v", status, code, o.Statuses, o.Codes)
		}
		if o.Took < t.RequestTimeout-time.Second || o.Took > t.RequestTimeout+2*time.Second {
			return fmt.Sprintf("answered after %v, the limit is %v", o.Took, t.RequestTimeout)
		}
		return ""
	}
}

// stalledBody announces a body and sends half of it.
func stalledBody(t Target) Outcome {
	var o Outcome
	u, _ := url.Parse(t.Base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		o.Note = err.Error()
		return o
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /read_ocr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"image\":\"")
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	o.Statuses, o.Codes = map[int]int{}, map[string]int{}
	if err != nil {
		o.Statuses[0]++
		o.Note = err.Error()
	} else {
		body, _ := io.ReadAll(resp.Body)
		var m struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(body, &m)
		o.Statuses[resp.StatusCode]++
		o.Codes[m.Error.Code]++
		o.Note = m.Error.Message
	}
	o.Took = time.Since(start)
	return o
}

// neverRead sends requests on 5 connections with tiny receive buffers and never reads the
// answers. An answer larger than the socket buffers is cut at the write timeout; one that fits
// in them is written, and the connection, idle then, is closed at the idle timeout: either
// way the server lets go of the connection.
func neverRead(t Target) Outcome {
	var o Outcome
	u, _ := url.Parse(t.Base)
	body := `{"layout":true,"image":"` + base64.StdEncoding.EncodeToString(testimages.Must("phototest.tif").Bytes) + `"}`
	var conns []*net.TCPConn
	for range 5 {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			o.Note = err.Error()
			return o
		}
		tc := c.(*net.TCPConn)
		tc.SetReadBuffer(4096)
		fmt.Fprintf(tc, "POST /read_ocr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		conns = append(conns, tc)
	}
	start := time.Now()
	time.Sleep(t.WriteTimeout + t.IdleTimeout + 5*time.Second)
	o.Statuses = map[int]int{}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		got, err := io.ReadAll(c) // nil error: the server closed the connection
		c.Close()
		if err == nil {
			o.Statuses[-1]++
		} else {
			o.Statuses[0]++
			o.Note = fmt.Sprintf("still open after %v: %d bytes, %v", time.Since(start).Round(time.Second), len(got), err)
		}
	}
	o.Took = time.Since(start)
	return o
}

func droppedAfterWriteTimeout(t Target, o Outcome) string {
	if o.Statuses[-1] != 5 {
		return fmt.Sprintf("want 5 connections closed by the server, got %v (%s)", o.Statuses, o.Note)
	}
	return ""
}

func longRequestID(t Target) Outcome {
	var o Outcome
	req := jsonRequest(t.Base, testimages.Must("tjs_simple.pbm").Bytes)
	long := strings.Repeat("a", 1000)
	req.Header.Set("X-Request-Id", long)
	resp, err := http.DefaultClient.Do(req)
	o.Statuses = map[int]int{}
	if err != nil {
		o.Note = err.Error()
		return o
	}
	resp.Body.Close()
	o.Statuses[resp.StatusCode]++
	o.Note = resp.Header.Get("X-Request-Id")
	return o
}

func requestIDReplaced(t Target, o Outcome) string {
	if o.Statuses[200] != 1 || o.Note == "" || len(o.Note) > 128 {
		return fmt.Sprintf("want 200 with a new request ID, got %v, ID of %d bytes", o.Statuses, len(o.Note))
	}
	return ""
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
