package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// ocrRequest is the JSON body of POST /read_ocr. Unknown fields are ignored, as the original
// service ignored them.
type ocrRequest struct {
	Image  *string `json:"image"`
	Lang   string  `json:"lang"`
	Config string  `json:"config"`
	Layout bool    `json:"layout"`
}

// input is a request after parsing, whatever its encoding.
type input struct {
	image  []byte // set for base64, data: URI and multipart
	url    string // set for URLs
	source string // url, base64, data_uri, multipart (for logs and metrics)
	lang   string
	config string
	layout bool
}

func (s *Server) handleReadOCR(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.limits.RequestTimeout)
	defer cancel()

	in, err := s.parseInput(w, r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if in.lang == "" {
		in.lang = s.engine.DefaultLang()
	}
	annotate(r, func(a *annotations) { a.Source, a.Lang = in.source, in.lang })

	// Cheap checks first: a bad lang or config should not cost a download.
	opts, err := tessconfig.Parse(in.config)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.engine.CheckLang(in.lang); err != nil {
		writeError(w, r, err)
		return
	}
	if in.url != "" {
		if in.image, err = s.fetcher.Get(ctx, in.url); err != nil {
			writeError(w, r, err)
			return
		}
	}
	page, err := imageinput.Check(in.image, s.limits.MaxPixels)
	if err != nil {
		writeError(w, r, err)
		return
	}
	annotate(r, func(a *annotations) { a.Format, a.Width, a.Height = page.Format(), page.Width(), page.Height() })

	start := time.Now()
	res, err := s.engine.Recognize(ctx, ocr.Request{Page: page, Lang: in.lang, Options: opts, Layout: in.layout})
	elapsed := time.Since(start)
	annotate(r, func(a *annotations) { a.OCR = elapsed })
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.metrics.ocr.WithLabelValues(in.source).Observe(elapsed.Seconds())
	writeJSON(w, http.StatusOK, resultBody(res, in.layout))
}

// parseInput reads the body as JSON or multipart within the size limits.
func (s *Server) parseInput(w http.ResponseWriter, r *http.Request) (input, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Header.Get("Content-Type") == "" {
		mediaType, err = "application/json", nil
	}
	if err != nil {
		return input{}, &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_content_type", Message: "malformed Content-Type: " + err.Error()}
	}
	if mediaType == "application/x-www-form-urlencoded" || mediaType == "text/plain" {
		// `curl -d '{"image": ...}'` without -H sends a JSON object labelled as a form: accept it.
		br := bufio.NewReader(r.Body)
		if first, _ := br.Peek(1); len(first) == 1 && first[0] == '{' {
			mediaType = "application/json"
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{br, r.Body}
	}
	switch mediaType {
	case "application/json":
		// base64 grows the image by 4/3; leave room for the other fields.
		r.Body = http.MaxBytesReader(w, r.Body, s.limits.MaxImageBytes*4/3+64<<10)
		return s.parseJSON(r)
	case "multipart/form-data":
		r.Body = http.MaxBytesReader(w, r.Body, s.limits.MaxImageBytes+64<<10)
		return s.parseMultipart(r, params["boundary"])
	}
	return input{}, &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_content_type",
		Message: fmt.Sprintf("Content-Type %q: send application/json or multipart/form-data", mediaType)}
}

func (s *Server) parseJSON(r *http.Request) (input, error) {
	var req ocrRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return input{}, err
		}
		return input{}, badRequest("bad_request", "request body is not the expected JSON object: "+err.Error())
	}
	if dec.More() {
		return input{}, badRequest("bad_request", "request body has data after the JSON object")
	}
	if req.Image == nil || *req.Image == "" {
		return input{}, badRequest("bad_request", `"image" is required: an http(s) URL, a data: URI or base64`)
	}
	in := input{lang: req.Lang, config: req.Config, layout: req.Layout}
	var err error
	in.image, in.url, in.source, err = s.decodeImageField(*req.Image)
	if in.url != "" {
		if u, perr := fetch.CheckURL(in.url); perr == nil {
			annotate(r, func(a *annotations) { a.URLHost = u.Hostname() })
		}
	}
	return in, err
}

// decodeImageField tells a URL from a data: URI from base64.
func (s *Server) decodeImageField(v string) (image []byte, url, source string, err error) {
	v = strings.TrimSpace(v)
	lower := strings.ToLower(v[:min(len(v), 8)])
	switch {
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		if _, err := fetch.CheckURL(v); err != nil {
			return nil, "", "url", badRequest("invalid_image_field", "image URL: "+err.Error())
		}
		return nil, v, "url", nil
	case strings.HasPrefix(lower, "data:"):
		meta, data, ok := strings.Cut(v[len("data:"):], ",")
		if !ok || !strings.HasSuffix(strings.ToLower(meta), ";base64") {
			return nil, "", "data_uri", badRequest("invalid_image_field", "data: URIs must be base64 encoded (data:image/png;base64,...)")
		}
		b, err := decodeBase64(data)
		return b, "", "data_uri", err
	case strings.Contains(v[:min(len(v), 16)], "://"):
		scheme, _, _ := strings.Cut(v, "://")
		return nil, "", "url", badRequest("unsupported_url_scheme", fmt.Sprintf("only http and https URLs can be fetched, not %.16q", scheme))
	}
	b, err := decodeBase64(v)
	return b, "", "base64", err
}

// decodeBase64 accepts the standard and URL alphabets, with or without padding, and ignores
// line breaks (as `base64` wraps at 76 columns).
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	b, err := enc.WithPadding(base64.NoPadding).DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, badRequest("invalid_image_field", "image is neither an http(s) URL, a data: URI nor valid base64: "+err.Error())
	}
	if len(b) == 0 {
		return nil, badRequest("invalid_image_field", "image is empty")
	}
	return b, nil
}

// parseMultipart streams the parts (no temporary files: the container's filesystem is
// read-only) and reads the image part up to the byte limit.
func (s *Server) parseMultipart(r *http.Request, boundary string) (input, error) {
	if boundary == "" {
		return input{}, badRequest("bad_request", "multipart/form-data without a boundary")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return input{}, badRequest("bad_request", "multipart body: "+err.Error())
	}
	in := input{source: "multipart"}
	seen := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var maxBytes *http.MaxBytesError
			if errors.As(err, &maxBytes) {
				return in, err
			}
			return in, badRequest("bad_request", "multipart body: "+err.Error())
		}
		switch part.FormName() {
		case "image":
			var buf bytes.Buffer
			n, err := io.Copy(&buf, io.LimitReader(part, s.limits.MaxImageBytes+1))
			if err != nil {
				var maxBytes *http.MaxBytesError
				if errors.As(err, &maxBytes) {
					return in, err
				}
				return in, badRequest("bad_request", "reading the image part: "+err.Error())
			}
			if n > s.limits.MaxImageBytes {
				return in, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
					Message: fmt.Sprintf("image exceeds %d bytes", s.limits.MaxImageBytes)}
			}
			in.image, seen = buf.Bytes(), true
		case "lang", "config", "layout":
			v, err := io.ReadAll(io.LimitReader(part, tessconfig.MaxLen+1))
			if err != nil {
				return in, badRequest("bad_request", "multipart body: "+err.Error())
			}
			switch part.FormName() {
			case "lang":
				in.lang = string(v)
			case "config":
				in.config = string(v)
			case "layout":
				if in.layout, err = strconv.ParseBool(string(v)); err != nil {
					return in, badRequest("bad_request", "layout must be true or false")
				}
			}
		}
	}
	if !seen {
		return in, badRequest("bad_request", `multipart body has no "image" file part`)
	}
	return in, nil
}

// resultBody is {"text": ...} exactly as the original service answered, plus boxes on request.
func resultBody(res ocr.Result, layout bool) any {
	if !layout {
		return struct {
			Text string `json:"text"`
		}{res.Text}
	}
	type bbox struct {
		X0 int `json:"x0"`
		Y0 int `json:"y0"`
		X1 int `json:"x1"`
		Y1 int `json:"y1"`
	}
	type line struct {
		Text       string  `json:"text"`
		Confidence float64 `json:"confidence"`
		BBox       bbox    `json:"bbox"`
		Block      int     `json:"block"`
		Paragraph  int     `json:"paragraph"`
		Line       int     `json:"line"`
	}
	type word struct {
		line
		Word int `json:"word"`
	}
	out := struct {
		Text       string  `json:"text"`
		Confidence float64 `json:"confidence"`
		Lines      []line  `json:"lines"`
		Words      []word  `json:"words"`
	}{Text: res.Text, Confidence: round1(res.Confidence), Lines: []line{}, Words: []word{}}
	for _, l := range res.Lines {
		out.Lines = append(out.Lines, line{l.Text, round1(l.Confidence), bbox(l.Box), l.Block, l.Paragraph, l.Line})
	}
	for _, w := range res.Words {
		out.Words = append(out.Words, word{line{w.Text, round1(w.Confidence), bbox(w.Box), w.Block, w.Paragraph, w.Line}, w.Index})
	}
	return out
}

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }
