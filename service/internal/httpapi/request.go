package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/pipeline"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// request is a decoded body: the pipeline's input, and for POST /jobs the job's options.
type request struct {
	pipeline.Input
	CallbackURL    string
	IdempotencyKey string
}

// decode reads a read_ocr request, JSON or multipart, into the pipeline's Input. Before any
// byte of the body is read, the memory the request will hold is reserved from the budget (the
// body and the decoded image; the announced length, or the limit when none is announced): a
// request that cannot have it in time gets 503 server_busy and its body is never read.
func (s *Server) decode(w http.ResponseWriter, r *http.Request) (request, *membudget.Reservation, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Header.Get("Content-Type") == "" {
		mediaType, err = "application/json", nil
	}
	if err != nil {
		return request{}, nil, failure.New(failure.UnsupportedContent, "malformed Content-Type: %v", err)
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
	var limit, need int64
	switch mediaType {
	case "application/json":
		limit = s.cfg.maxJSONBody()
		need = bodySize(r, limit) * 7 / 4 // the body, then the image decoded from its base64
	case "multipart/form-data":
		limit = s.cfg.maxMultipartBody()
		need = bodySize(r, limit)
	default:
		return request{}, nil, failure.New(failure.UnsupportedContent,
			"Content-Type %q: send application/json or multipart/form-data", mediaType)
	}
	if r.ContentLength > limit {
		return request{}, nil, failure.New(failure.PayloadTooLarge, "request body of %d bytes exceeds %d bytes", r.ContentLength, limit)
	}
	mem, err := s.budget.Reserve(r.Context(), need)
	if err != nil {
		w.Header().Set("Connection", "close") // the body stays unread
		return request{}, mem, err
	}
	// The body must arrive within the request's time: reading stops when the request's context
	// ends (deadline, shutdown), not at the next packet.
	rc := http.NewResponseController(w)
	stop := context.AfterFunc(r.Context(), func() { rc.SetReadDeadline(time.Now()) })
	defer stop()
	r.Body = http.MaxBytesReader(w, r.Body, limit)

	var in request
	if mediaType == "application/json" {
		in, err = s.decodeJSON(r)
	} else {
		in, err = s.decodeMultipart(r, params["boundary"])
	}
	if err != nil {
		return in, mem, err
	}
	// What stays held until the request ends: the decoded image (the body is garbage now).
	mem.Shrink(int64(len(in.Image)))
	return in, mem, nil
}

// bodySize is the announced length of the body, or limit when none is announced.
func bodySize(r *http.Request, limit int64) int64 {
	if r.ContentLength >= 0 {
		return min(r.ContentLength, limit)
	}
	return limit
}

// readBody reads the whole body into one buffer of the announced size (a growing buffer would
// double as it goes).
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, bodyError(r, err)
		}
		return buf, nil
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return nil, bodyError(r, err)
	}
	return buf.Bytes(), nil
}

// bodyError says why a body could not be read, without the socket addresses that net errors
// carry.
func bodyError(r *http.Request, err error) error {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return failure.New(failure.PayloadTooLarge, "request body exceeds %d bytes", maxBytes.Limit)
	case r.Context().Err() != nil:
		return failure.FromContext(r.Context(), failure.RequestTimeout, "the request body was arriving")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return failure.Wrap(failure.RequestTimeout, err, "the request body did not arrive in time")
	}
	return failure.Wrap(failure.BadRequest, err, "the request body could not be read (cut short?)")
}

// imageField keeps the raw JSON of "image": json.Unmarshal passes a slice of the body, so the
// base64 text is decoded from the body itself, not from a copy of it as a Go string.
type imageField struct{ raw []byte }

func (f *imageField) UnmarshalJSON(b []byte) error {
	f.raw = b
	return nil
}

// text returns the string's content: a slice of the body when it has no escapes (base64,
// URLs and data: URIs have none; some encoders write "\/").
func (f imageField) text() ([]byte, error) {
	b := f.raw
	if len(b) < 2 || b[0] != '"' {
		return nil, failure.New(failure.BadRequest, `"image" must be a string: an http(s) URL, a data: URI or base64`)
	}
	if bytes.IndexByte(b, '\\') < 0 {
		return b[1 : len(b)-1], nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, failure.New(failure.BadRequest, `"image" is not a valid JSON string`)
	}
	return []byte(s), nil
}

// decodeJSON reads {"image": ..., "lang": ..., "config": ..., "layout": ...}. Unknown fields
// are ignored, as the original service ignored them.
func (s *Server) decodeJSON(r *http.Request) (request, error) {
	body, err := readBody(r)
	if err != nil {
		return request{}, err
	}
	var req struct {
		Image   *imageField `json:"image"`
		Lang    string      `json:"lang"`
		Config  string      `json:"config"`
		Layout  bool        `json:"layout"`
		Format  string      `json:"format"`
		Pages   pagesField  `json:"pages"`
		PDFText string      `json:"pdf_text"`
		OCRMode string      `json:"ocr_mode"`
		// POST /jobs only
		CallbackURL    string `json:"callback_url"`
		IdempotencyKey string `json:"idempotency_key"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		if failure.CodeOf(err) != failure.Internal {
			return request{}, err
		}
		return request{}, failure.Wrap(failure.BadRequest, err, "request body is not the expected JSON object: %s", jsonProblem(err))
	}
	if req.Image == nil || string(req.Image.raw) == "null" {
		return request{}, failure.New(failure.BadRequest, `"image" is required: an http(s) URL, a data: URI or base64`)
	}
	text, err := req.Image.text()
	if err != nil {
		return request{}, err
	}
	in := request{Input: pipeline.Input{Lang: req.Lang, Config: req.Config, Layout: req.Layout, Format: req.Format,
		Pages: string(req.Pages), PDFText: req.PDFText, OCRMode: req.OCRMode}, CallbackURL: req.CallbackURL, IdempotencyKey: req.IdempotencyKey}
	err = s.decodeImageField(&in.Input, text)
	return in, err
}

// pagesField is "pages": a selection such as "1-3,7", or one page number.
type pagesField string

func (f *pagesField) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*f = pagesField(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return failure.New(failure.InvalidPages, `"pages" must be a string such as "1-3,7" or a page number`)
	}
	*f = pagesField(s)
	return nil
}

// jsonProblem describes a JSON error in words that quote none of the body.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "invalid JSON at byte " + strconv.FormatInt(syntax.Offset, 10)
	case errors.As(err, &typ):
		return "field " + strconv.Quote(typ.Field) + " has the wrong type (" + typ.Value + ")"
	}
	return "malformed JSON"
}

// decodeImageField tells a URL from a data: URI from base64.
func (s *Server) decodeImageField(in *pipeline.Input, v []byte) error {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return failure.New(failure.BadRequest, `"image" is required: an http(s) URL, a data: URI or base64`)
	}
	lower := bytes.ToLower(v[:min(len(v), 8)])
	switch {
	case bytes.HasPrefix(lower, []byte("http://")), bytes.HasPrefix(lower, []byte("https://")):
		in.Source = "url"
		u, err := fetch.ParseURL(string(v))
		if err != nil {
			return err
		}
		in.URL = u
		return nil
	case bytes.HasPrefix(lower, []byte("data:")):
		in.Source = "data_uri"
		meta, data, ok := bytes.Cut(v[len("data:"):], []byte(","))
		if !ok || !bytes.HasSuffix(bytes.ToLower(meta), []byte(";base64")) {
			return failure.New(failure.InvalidImageField, "data: URIs must be base64 encoded (data:image/png;base64,...)")
		}
		var err error
		in.Image, err = decodeBase64(data, s.cfg.MaxImageBytes)
		return err
	case bytes.Contains(v[:min(len(v), 16)], []byte("://")):
		in.Source = "url"
		scheme, _, _ := bytes.Cut(v, []byte("://"))
		return failure.New(failure.UnsupportedURLScheme, "only http and https URLs can be fetched, not %.16q", scheme)
	}
	in.Source = "base64"
	var err error
	in.Image, err = decodeBase64(v, s.cfg.MaxImageBytes)
	return err
}

// decodeBase64 accepts the standard and URL alphabets, with or without padding, and ignores
// white space (`base64` wraps at 76 columns).
func decodeBase64(b []byte, maxBytes int64) ([]byte, error) {
	if bytes.ContainsAny(b, " \t") { // the decoder skips only \r and \n
		b = bytes.Map(func(r rune) rune {
			if r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, b)
	}
	b = bytes.TrimRight(b, "=\r\n")
	enc := base64.StdEncoding
	if bytes.ContainsAny(b, "-_") {
		enc = base64.URLEncoding
	}
	enc = enc.WithPadding(base64.NoPadding)
	if n := enc.DecodedLen(len(b)); int64(n) > maxBytes+3 {
		return nil, failure.New(failure.PayloadTooLarge, "image exceeds %d bytes", maxBytes)
	}
	out := make([]byte, enc.DecodedLen(len(b)))
	n, err := enc.Decode(out, b)
	if err != nil {
		return nil, failure.New(failure.InvalidImageField, "image is neither an http(s) URL, a data: URI nor valid base64: %v", err)
	}
	if n == 0 {
		return nil, failure.New(failure.InvalidImageField, "image is empty")
	}
	if int64(n) > maxBytes {
		return nil, failure.New(failure.PayloadTooLarge, "image exceeds %d bytes", maxBytes)
	}
	return out[:n], nil
}

// decodeMultipart streams the parts (no temporary files: the container's filesystem is
// read-only) and reads the image part up to the byte limit.
func (s *Server) decodeMultipart(r *http.Request, boundary string) (request, error) {
	in := request{Input: pipeline.Input{Source: "multipart"}}
	if boundary == "" {
		return in, failure.New(failure.BadRequest, "multipart/form-data without a boundary")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return in, failure.Wrap(failure.BadRequest, err, "malformed multipart body")
	}
	seen := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if be := bodyError(r, err); failure.CodeOf(be) != failure.BadRequest {
				return in, be
			}
			return in, failure.Wrap(failure.BadRequest, err, "malformed multipart body")
		}
		switch part.FormName() {
		case "image":
			// One buffer as large as the body announced (or the limit).
			buf := bytes.NewBuffer(make([]byte, 0, min(bodySize(r, s.cfg.MaxImageBytes), s.cfg.MaxImageBytes)+1))
			n, err := buf.ReadFrom(io.LimitReader(part, s.cfg.MaxImageBytes+1))
			if err != nil {
				return in, bodyError(r, err)
			}
			if n > s.cfg.MaxImageBytes {
				return in, failure.New(failure.PayloadTooLarge, "image exceeds %d bytes", s.cfg.MaxImageBytes)
			}
			in.Image, seen = buf.Bytes(), true
		case "lang", "config", "layout", "format", "pages", "pdf_text", "ocr_mode", "callback_url", "idempotency_key":
			v, err := io.ReadAll(io.LimitReader(part, tessconfig.MaxLen+1))
			if err != nil {
				return in, bodyError(r, err)
			}
			switch part.FormName() {
			case "lang":
				in.Lang = string(v)
			case "config":
				in.Config = string(v)
			case "layout":
				if in.Layout, err = strconv.ParseBool(string(v)); err != nil {
					return in, failure.New(failure.BadRequest, "layout must be true or false")
				}
			case "format":
				in.Format = string(v)
			case "pages":
				in.Pages = string(v)
			case "pdf_text":
				in.PDFText = string(v)
			case "ocr_mode":
				in.OCRMode = string(v)
			case "callback_url":
				in.CallbackURL = string(v)
			case "idempotency_key":
				in.IdempotencyKey = string(v)
			}
		}
	}
	if !seen {
		return in, failure.New(failure.BadRequest, `multipart body has no "image" file part`)
	}
	if len(in.Image) == 0 {
		return in, failure.New(failure.InvalidImageField, "image is empty")
	}
	return in, nil
}
