package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/readocr/readocr/service/api"
	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/membudget"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// The codes the service can produce (failure.Codes), the codes the status table maps, and the
// codes the contract lists are the same set: a code the contract lists that nothing produces,
// or one produced that it does not list, fails here.
func TestCodesMatchTheContract(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	var contract []string
	for _, v := range doc.Components.Schemas["Error"].Value.Properties["error"].Value.Properties["code"].Value.Enum {
		contract = append(contract, v.(string))
	}
	var produced, mapped []string
	for _, c := range failure.Codes {
		produced = append(produced, string(c))
	}
	for c := range statuses {
		mapped = append(mapped, string(c))
	}
	slices.Sort(contract)
	slices.Sort(produced)
	slices.Sort(mapped)
	if !slices.Equal(contract, produced) || !slices.Equal(produced, mapped) {
		t.Errorf("contract %v\nproduced %v\nmapped %v", contract, produced, mapped)
	}
}

// Every domain error, wrapped as the packages wrap them, is answered with its documented status
// and code; context causes decide what an interrupted request gets.
func TestErrorStatus(t *testing.T) {
	shutdown, cancel := context.WithCancelCause(context.Background())
	cancel(failure.ErrShutdown)
	gone, cancel2 := context.WithCancel(context.Background())
	cancel2()
	late, cancel3 := context.WithTimeoutCause(context.Background(), 0, failure.ErrDeadline)
	defer cancel3()
	<-late.Done()
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{tessconfig.ErrInvalid, 400, "invalid_config"},
		{failure.Detail(tessconfig.ErrUnsupported, "x"), 400, "unsupported_config"},
		{ocr.ErrInvalidLang, 400, "invalid_lang"},
		{ocr.ErrUnknownLanguage, 422, "unknown_language"},
		{imageinput.ErrEmpty, 400, "invalid_image_field"},
		{imageinput.ErrUnsupported, 415, "unsupported_media_type"},
		{imageinput.ErrTooManyPages, 413, "too_many_pages"},
		{imageinput.ErrBadPages, 400, "invalid_pages"},
		{imageinput.ErrUnsupported, 415, "unsupported_media_type"},
		{imageinput.ErrUndecodable, 422, "undecodable_image"},
		{ocr.ErrUndecodable, 422, "undecodable_image"},
		{imageinput.ErrTooLarge, 413, "image_too_large"},
		{ocr.ErrTooLarge, 413, "image_too_large"},
		{fetch.ErrTooLarge, 413, "payload_too_large"},
		{fetch.ErrScheme, 400, "unsupported_url_scheme"},
		{fetch.ErrNotAllowed, 400, "url_not_allowed"},
		{fetch.ErrInvalid, 400, "invalid_image_field"},
		{fetch.ErrTimeout, 504, "fetch_timeout"},
		{fetch.ErrFailed, 502, "fetch_failed"},
		{ocr.ErrBusy, 429, "queue_full"},
		{ocr.ErrQueueTimeout, 503, "queue_timeout"},
		{membudget.ErrBusy, 503, "server_busy"},
		{ocr.ErrClosed, 503, "not_ready"},
		{failure.FromContext(shutdown, failure.OCRTimeout, "x"), 503, "not_ready"},
		{failure.FromContext(gone, failure.OCRTimeout, "x"), 499, "client_closed_request"},
		{failure.FromContext(late, failure.OCRTimeout, "x"), 504, "ocr_timeout"},
		{failure.FromContext(late, failure.QueueTimeout, "x"), 503, "queue_timeout"},
		{failure.FromContext(late, failure.RequestTimeout, "x"), 408, "request_timeout"},
		{errors.New("something else"), 500, "internal"},
	}
	s := &Server{cfg: DefaultConfig()}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/read_ocr", nil)
		s.fail(w, r, fmt.Errorf("context: %w", tt.err))
		var body errorBody
		decodeJSON(t, w.Body.Bytes(), &body)
		if w.Code != tt.status || body.Error.Code != tt.code {
			t.Errorf("%v: got %d %s, want %d %s", tt.err, w.Code, body.Error.Code, tt.status, tt.code)
		}
		if (w.Code == 429 || w.Code == 503) && w.Header().Get("Retry-After") == "" {
			t.Errorf("%v: %d without Retry-After", tt.err, w.Code)
		}
		if tt.code == "internal" && body.Error.Message != "internal error" {
			t.Errorf("internal error leaks its cause: %q", body.Error.Message)
		}
	}
}
