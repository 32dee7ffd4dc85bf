package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/pipeline"
)

// annotations are facts a handler learns about a request (never the image or the URL) that
// the access log line reports.
type annotations struct {
	Source, URLHost, ErrorCode string
	Key                        string // the API key's id (never the key)
	facts                      pipeline.Facts
	err                        error // the full error, causes included: logged for 5xx
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

// validRequestID is what a caller's X-Request-Id may be: a tracing system's ID, not a
// payload (it is echoed in a header and written to every log line).
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:/+=@-]{1,128}$`)

// requestID takes the caller's X-Request-Id when it is sane, else makes one, and echoes it.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(middleware.RequestIDHeader)
		if !validRequestID.MatchString(id) {
			var b [12]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(middleware.RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), middleware.RequestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// track counts requests being served, so that the shutdown can wait for their answers.
func (s *Server) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Done()
		next.ServeHTTP(w, r)
	})
}

// deadline gives a request its time limit, RequestTimeout, with a cause that each stage turns
// into its own timeout code (failure.FromContext).
func (s *Server) deadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeoutCause(r.Context(), s.cfg.RequestTimeout, failure.ErrDeadline)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// accessLog writes one JSON line per request and records the HTTP metrics.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := middleware.GetReqID(r.Context())
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
		s.metrics.observeRequest(ctx, route, status, elapsed)
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetName(r.Method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
			if a.ErrorCode != "" {
				span.SetAttributes(attribute.String("readocr.error", a.ErrorCode))
			}
		}

		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.Int("bytes", ww.BytesWritten()),
			slog.String("remote", r.RemoteAddr),
		}
		f := a.facts
		if a.Key != "" {
			attrs = append(attrs, slog.String("key", a.Key))
		}
		if a.Source != "" {
			attrs = append(attrs, slog.String("source", a.Source))
		}
		if f.Lang != "" {
			attrs = append(attrs, slog.String("lang", f.Lang))
		}
		if a.URLHost != "" {
			attrs = append(attrs, slog.String("url_host", a.URLHost))
		}
		if f.Format != "" {
			attrs = append(attrs, slog.String("format", f.Format), slog.String("size", strconv.Itoa(f.Width)+"x"+strconv.Itoa(f.Height)))
		}
		if f.OCR > 0 {
			attrs = append(attrs, slog.Float64("ocr_ms", float64(f.OCR.Microseconds())/1000))
		}
		if a.ErrorCode != "" {
			attrs = append(attrs, slog.String("error", a.ErrorCode))
			s.metrics.errors.WithLabelValues(a.ErrorCode).Inc()
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
			if a.err != nil {
				attrs = append(attrs, slog.String("cause", a.err.Error()))
			}
		}
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
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
				s.fail(w, r, failure.New(failure.Internal, "panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
