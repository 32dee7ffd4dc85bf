package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// annotations are facts a handler learns about a request (never the image or the URL) that
// the access log line reports.
type annotations struct {
	Lang, Source, Format, URLHost, ErrorCode string
	Width, Height                            int
	OCR                                      time.Duration
}

type ctxKey int

const (
	annotationsKey ctxKey = iota
	loggerKey
)

// annotate records facts for the access line. Only the request's own goroutine calls it, and
// the line is written after the handler returned, so no locking is needed.
func annotate(r *http.Request, f func(*annotations)) {
	if a, ok := r.Context().Value(annotationsKey).(*annotations); ok {
		f(a)
	}
}

func logFrom(r *http.Request) *slog.Logger {
	if l, ok := r.Context().Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// accessLog writes one JSON line per request and records the HTTP metrics. The request ID is
// the caller's X-Request-Id when given (chi's RequestID), echoed in the response.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := middleware.GetReqID(r.Context())
		w.Header().Set("X-Request-Id", id)
		log := s.log.With("request_id", id)
		a := &annotations{}
		ctx := context.WithValue(context.WithValue(r.Context(), annotationsKey, a), loggerKey, log)
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(ctx))

		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		route := chi.RouteContext(ctx).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		s.metrics.observeRequest(route, status, elapsed)

		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.Int("bytes", ww.BytesWritten()),
			slog.String("remote", r.RemoteAddr),
		}
		if a.Source != "" {
			attrs = append(attrs, slog.String("source", a.Source), slog.String("lang", a.Lang))
		}
		if a.URLHost != "" {
			attrs = append(attrs, slog.String("url_host", a.URLHost))
		}
		if a.Format != "" {
			attrs = append(attrs, slog.String("format", a.Format), slog.String("size", strconv.Itoa(a.Width)+"x"+strconv.Itoa(a.Height)))
		}
		if a.OCR > 0 {
			attrs = append(attrs, slog.Float64("ocr_ms", float64(a.OCR.Microseconds())/1000))
		}
		if a.ErrorCode != "" {
			attrs = append(attrs, slog.String("error", a.ErrorCode))
			s.metrics.errors.WithLabelValues(a.ErrorCode).Inc()
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug // probes every few seconds would drown the log
		}
		log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// recoverer turns a panic in a handler into a JSON 500 and a logged stack, never an HTML page.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logFrom(r).Error("panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
