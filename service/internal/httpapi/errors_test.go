package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// Every domain error, wrapped as the packages wrap them, maps to its documented status and code.
func TestErrorFor(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{tessconfig.ErrInvalid, 400, "invalid_config"},
		{tessconfig.ErrUnsupported, 400, "unsupported_config"},
		{ocr.ErrInvalidLang, 400, "invalid_lang"},
		{ocr.ErrUnknownLanguage, 422, "unknown_language"},
		{imageinput.ErrEmpty, 400, "invalid_image_field"},
		{imageinput.ErrPDF, 415, "unsupported_media_type"},
		{imageinput.ErrUnsupported, 415, "unsupported_media_type"},
		{imageinput.ErrUndecodable, 422, "undecodable_image"},
		{ocr.ErrUndecodable, 422, "undecodable_image"},
		{imageinput.ErrTooLarge, 413, "image_too_large"},
		{fetch.ErrTooLarge, 413, "payload_too_large"},
		{&http.MaxBytesError{Limit: 10}, 413, "payload_too_large"},
		{fetch.ErrScheme, 400, "unsupported_url_scheme"},
		{fetch.ErrNotAllowed, 400, "url_not_allowed"},
		{fetch.ErrTimeout, 504, "fetch_timeout"},
		{fetch.ErrFailed, 502, "fetch_failed"},
		{ocr.ErrBusy, 429, "queue_full"},
		{ocr.ErrQueueTimeout, 503, "queue_timeout"},
		{context.DeadlineExceeded, 503, "queue_timeout"},
		{fmt.Errorf("%w: %w", ocr.ErrStopped, context.DeadlineExceeded), 504, "ocr_timeout"},
		{fmt.Errorf("%w: %w", ocr.ErrStopped, context.Canceled), 499, "client_closed_request"},
		{context.Canceled, 499, "client_closed_request"},
		{ocr.ErrClosed, 503, "not_ready"},
		{fmt.Errorf("something else"), 500, "internal"},
	}
	for _, tt := range tests {
		got := errorFor(fmt.Errorf("context: %w", tt.err))
		if got.Status != tt.status || got.Code != tt.code {
			t.Errorf("%v: got %d %s, want %d %s", tt.err, got.Status, got.Code, tt.status, tt.code)
		}
		if (got.Status == 429 || got.Status == 503) && got.RetryAfter == 0 {
			t.Errorf("%v: %d without Retry-After", tt.err, got.Status)
		}
		if got.Code == "internal" && got.Message != "internal error" {
			t.Errorf("internal error leaks its cause: %q", got.Message)
		}
	}
}
