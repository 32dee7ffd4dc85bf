package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/readocr/readocr/service/internal/failure"
)

// status is how an error code is answered.
type status struct {
	code       int
	retryAfter int // seconds, for statuses that invite a retry
}

// statuses maps every error code to its HTTP status: the one place where the domain's errors
// meet HTTP. A test holds it against failure.Codes and the OpenAPI document.
var statuses = map[failure.Code]status{
	failure.BadRequest:           {http.StatusBadRequest, 0},
	failure.InvalidImageField:    {http.StatusBadRequest, 0},
	failure.UnsupportedURLScheme: {http.StatusBadRequest, 0},
	failure.URLNotAllowed:        {http.StatusBadRequest, 0},
	failure.InvalidLang:          {http.StatusBadRequest, 0},
	failure.InvalidConfig:        {http.StatusBadRequest, 0},
	failure.UnsupportedConfig:    {http.StatusBadRequest, 0},
	failure.InvalidPages:         {http.StatusBadRequest, 0},
	failure.InvalidFormat:        {http.StatusBadRequest, 0},
	failure.NotAcceptable:        {http.StatusNotAcceptable, 0},
	failure.TooManyPages:         {http.StatusRequestEntityTooLarge, 0},
	failure.UndecodableDocument:  {http.StatusUnprocessableEntity, 0},
	failure.EncryptedPDF:         {http.StatusUnprocessableEntity, 0},
	failure.NotPDFA:              {http.StatusUnprocessableEntity, 0},
	failure.NotFound:             {http.StatusNotFound, 0},
	failure.MethodNotAllowed:     {http.StatusMethodNotAllowed, 0},
	failure.RequestTimeout:       {http.StatusRequestTimeout, 0},
	failure.PayloadTooLarge:      {http.StatusRequestEntityTooLarge, 0},
	failure.ImageTooLarge:        {http.StatusRequestEntityTooLarge, 0},
	failure.UnsupportedMediaType: {http.StatusUnsupportedMediaType, 0},
	failure.UnsupportedContent:   {http.StatusUnsupportedMediaType, 0},
	failure.UndecodableImage:     {http.StatusUnprocessableEntity, 0},
	failure.UnknownLanguage:      {http.StatusUnprocessableEntity, 0},
	failure.QueueFull:            {http.StatusTooManyRequests, 1},
	failure.TooManyJobs:          {http.StatusTooManyRequests, 10},
	failure.JobNotDone:           {http.StatusConflict, 1},
	failure.JobCanceled:          {http.StatusConflict, 0},
	failure.WorkerLost:           {http.StatusInternalServerError, 0},
	// The client went away (nginx's 499): nobody reads it, but the access log says why.
	failure.ClientClosedRequest: {499, 0},
	failure.Internal:            {http.StatusInternalServerError, 0},
	failure.FetchFailed:         {http.StatusBadGateway, 0},
	failure.ServerBusy:          {http.StatusServiceUnavailable, 2},
	failure.QueueTimeout:        {http.StatusServiceUnavailable, 2},
	failure.NotReady:            {http.StatusServiceUnavailable, 1},
	failure.FetchTimeout:        {http.StatusGatewayTimeout, 0},
	// Retrying the same page would take as long again: no Retry-After.
	failure.OCRTimeout: {http.StatusGatewayTimeout, 0},
	// Access control. The limits set their own Retry-After (the table's is the floor).
	failure.Unauthorized:         {http.StatusUnauthorized, 0},
	failure.Forbidden:            {http.StatusForbidden, 0},
	failure.RateLimited:          {http.StatusTooManyRequests, 1},
	failure.QuotaExceeded:        {http.StatusTooManyRequests, 1},
	failure.IdempotencyKeyReused: {http.StatusUnprocessableEntity, 0},
	failure.IdempotencyKeyInUse:  {http.StatusConflict, 1},
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// fail answers with err's JSON error and records the code for the access log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := failure.CodeOf(err)
	st, ok := statuses[code]
	if !ok {
		code, st = failure.Internal, statuses[failure.Internal]
	}
	msg := failure.MessageOf(err)
	if code == failure.Internal {
		logFrom(r).Error("internal error", "err", err)
		msg = "internal error"
	}
	annotate(r, func(a *annotations) { a.ErrorCode, a.err = string(code), err })
	if st.retryAfter > 0 && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(st.retryAfter))
	}
	var body errorBody
	body.Error.Code, body.Error.Message = string(code), msg
	body.RequestID = middleware.GetReqID(r.Context())
	s.respond(w, st.code, body)
}

// respondBody writes an answer already encoded, with the same write deadline as respond.
func (s *Server) respondBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// respond writes v as JSON. The client has WriteTimeout to take it: one that does not read is
// dropped, with what was buffered for it.
func (s *Server) respond(w http.ResponseWriter, status int, v any) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
