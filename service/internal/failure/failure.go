// Package failure gives every error the service reports a stable code, carried by the error
// itself from where it happens: the HTTP layer maps codes to statuses in one table, and the
// job worker records the same codes. Messages are written for the client: they never carry
// socket or resolver addresses, file paths or image bytes; causes that may are kept in Err,
// for logs only.
package failure

import (
	"context"
	"errors"
	"fmt"
)

// Code is what the API reports in error.code; the OpenAPI document lists every one.
type Code string

// The codes. Each is produced somewhere (a test checks that the contract lists exactly these).
const (
	BadRequest           Code = "bad_request"
	InvalidImageField    Code = "invalid_image_field"
	UnsupportedURLScheme Code = "unsupported_url_scheme"
	URLNotAllowed        Code = "url_not_allowed"
	InvalidLang          Code = "invalid_lang"
	InvalidConfig        Code = "invalid_config"
	UnsupportedConfig    Code = "unsupported_config"
	RequestTimeout       Code = "request_timeout"
	PayloadTooLarge      Code = "payload_too_large"
	ImageTooLarge        Code = "image_too_large"
	UnsupportedMediaType Code = "unsupported_media_type"
	UnsupportedContent   Code = "unsupported_content_type"
	UndecodableImage     Code = "undecodable_image"
	UndecodableDocument  Code = "undecodable_document"
	EncryptedPDF         Code = "encrypted_pdf"
	NotPDFA              Code = "not_pdfa_convertible" // output_type=pdfa of a PDF an update cannot make PDF/A
	TooManyPages         Code = "too_many_pages"
	InvalidPages         Code = "invalid_pages"
	InvalidFormat        Code = "invalid_format"
	NotAcceptable        Code = "not_acceptable"
	UnknownLanguage      Code = "unknown_language"
	QueueFull            Code = "queue_full"
	QueueTimeout         Code = "queue_timeout"
	ServerBusy           Code = "server_busy"
	NotReady             Code = "not_ready"
	FetchFailed          Code = "fetch_failed"
	FetchTimeout         Code = "fetch_timeout"
	OCRTimeout           Code = "ocr_timeout"
	ClientClosedRequest  Code = "client_closed_request"
	NotFound             Code = "not_found"
	TooManyJobs          Code = "too_many_jobs" // the jobs' backlog is at its bound
	JobNotDone           Code = "job_not_done"  // a result asked for before the job succeeded
	JobCanceled          Code = "job_canceled"
	WorkerLost           Code = "worker_lost" // a job whose worker died every time it ran it
	MethodNotAllowed     Code = "method_not_allowed"
	Internal             Code = "internal"

	// Access control (API keys, limits) and idempotency keys.
	Unauthorized         Code = "unauthorized"           // no API key, or one not in the key file
	Forbidden            Code = "forbidden"              // a key without the route's scope
	RateLimited          Code = "rate_limited"           // the key's request rate
	QuotaExceeded        Code = "quota_exceeded"         // the key's pages for the period
	IdempotencyKeyReused Code = "idempotency_key_reused" // the same Idempotency-Key with another request
	IdempotencyKeyInUse  Code = "idempotency_key_in_use" // the first request with it is still being queued
)

// Codes lists every code, for the test that holds them against the contract.
var Codes = []Code{
	BadRequest, InvalidImageField, UnsupportedURLScheme, URLNotAllowed, InvalidLang, InvalidConfig,
	UnsupportedConfig, RequestTimeout, PayloadTooLarge, ImageTooLarge, UnsupportedMediaType,
	UnsupportedContent, UndecodableImage, UndecodableDocument, EncryptedPDF, NotPDFA, TooManyPages, InvalidPages,
	InvalidFormat, NotAcceptable, UnknownLanguage, QueueFull, QueueTimeout, ServerBusy,
	NotReady, FetchFailed, FetchTimeout, OCRTimeout, ClientClosedRequest, NotFound, MethodNotAllowed,
	TooManyJobs, JobNotDone, JobCanceled, WorkerLost, Internal,
	Unauthorized, Forbidden, RateLimited, QuotaExceeded, IdempotencyKeyReused, IdempotencyKeyInUse,
}

// Error is a failure with its code. Message is for the client; Err, the cause, is for logs.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error whose cause is err (logged, not shown to the client).
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Detail wraps a sentinel Error with more words for the client: the code is the sentinel's,
// and errors.Is still finds the sentinel.
func Detail(sentinel *Error, format string, args ...any) error {
	return &detailed{sentinel: sentinel, msg: sentinel.Message + ": " + fmt.Sprintf(format, args...)}
}

type detailed struct {
	sentinel *Error
	msg      string
}

func (d *detailed) Error() string { return d.msg }
func (d *detailed) Unwrap() error { return d.sentinel }

// CodeOf returns err's code, and Internal for an error that has none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns what the client may read about err: the message of the outermost coded
// error with the details wrapped around it, never the text of an uncoded cause.
func MessageOf(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch v := e.(type) {
		case *detailed:
			return v.msg
		case *Error:
			return v.Message
		}
	}
	return "internal error"
}

// Causes a context can end with. The HTTP layer gives each request a deadline with
// ErrDeadline as its cause, and a shutdown cancels requests with ErrShutdown.
var (
	ErrDeadline = New(OCRTimeout, "the request was not done within its time limit (request-timeout)")
	ErrShutdown = New(NotReady, "the server is shutting down: retry on another replica")
)

// FromContext says why ctx ended, for a stage whose time-out code is timeout: the shutdown,
// the request's own deadline (as the stage's timeout), or the client going away.
func FromContext(ctx context.Context, timeout Code, stage string) error {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrShutdown):
		return ErrShutdown
	case errors.Is(cause, ErrDeadline), errors.Is(cause, context.DeadlineExceeded):
		return Wrap(timeout, cause, "the request's time limit ran out while %s", stage)
	case cause == nil:
		return nil
	}
	return Wrap(ClientClosedRequest, cause, "the client closed the connection while %s", stage)
}
