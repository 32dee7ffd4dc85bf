package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/readocr/readocr/service/internal/fetch"
	"github.com/readocr/readocr/service/internal/imageinput"
	"github.com/readocr/readocr/service/internal/ocr"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// apiError is what a client sees: a status, a stable code (listed in the OpenAPI document)
// and a human message.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds, for 429 and 503
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// errorFor maps every error the request path can produce to its status and code: the one place
// where domain errors meet HTTP.
func errorFor(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := err.Error()
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: "request body exceeds " + strconv.FormatInt(maxBytes.Limit, 10) + " bytes"}
	case errors.Is(err, tessconfig.ErrInvalid):
		return badRequest("invalid_config", msg)
	case errors.Is(err, tessconfig.ErrUnsupported):
		return badRequest("unsupported_config", msg)
	case errors.Is(err, ocr.ErrInvalidLang):
		return badRequest("invalid_lang", msg)
	case errors.Is(err, ocr.ErrUnknownLanguage):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "unknown_language", Message: msg}
	case errors.Is(err, imageinput.ErrEmpty):
		return badRequest("invalid_image_field", msg)
	case errors.Is(err, imageinput.ErrPDF), errors.Is(err, imageinput.ErrUnsupported):
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: msg}
	case errors.Is(err, imageinput.ErrUndecodable), errors.Is(err, ocr.ErrUndecodable):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "undecodable_image", Message: msg}
	case errors.Is(err, imageinput.ErrTooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "image_too_large", Message: msg}
	case errors.Is(err, fetch.ErrTooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: msg}
	case errors.Is(err, fetch.ErrScheme):
		return badRequest("unsupported_url_scheme", msg)
	case errors.Is(err, fetch.ErrNotAllowed):
		return badRequest("url_not_allowed", msg)
	case errors.Is(err, fetch.ErrTimeout):
		return &apiError{Status: http.StatusGatewayTimeout, Code: "fetch_timeout", Message: msg}
	case errors.Is(err, fetch.ErrFailed):
		return &apiError{Status: http.StatusBadGateway, Code: "fetch_failed", Message: msg}
	case errors.Is(err, ocr.ErrBusy):
		return &apiError{Status: http.StatusTooManyRequests, Code: "queue_full", Message: msg, RetryAfter: 1}
	case errors.Is(err, ocr.ErrStopped) && errors.Is(err, context.DeadlineExceeded):
		// Retrying the same page would take as long again: no Retry-After.
		return &apiError{Status: http.StatusGatewayTimeout, Code: "ocr_timeout",
			Message: "the page was not recognised within the request time limit (request-timeout)"}
	case errors.Is(err, ocr.ErrQueueTimeout), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "queue_timeout", Message: msg, RetryAfter: 2}
	case errors.Is(err, context.Canceled):
		// The client went away (nginx's 499): nobody reads this, but the access log shows why.
		return &apiError{Status: 499, Code: "client_closed_request", Message: "the client closed the connection"}
	case errors.Is(err, ocr.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: msg, RetryAfter: 1}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// writeError answers with err's JSON error and records the code for the access log.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := errorFor(err)
	if ae.Code == "internal" {
		logFrom(r).Error("internal error", "err", err)
	}
	annotate(r, func(a *annotations) { a.ErrorCode = ae.Code })
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	var body errorBody
	body.Error.Code, body.Error.Message = ae.Code, ae.Message
	body.RequestID = middleware.GetReqID(r.Context())
	writeJSON(w, ae.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
