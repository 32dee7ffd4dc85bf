package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/readocr/readocr/service/internal/failure"
	"github.com/readocr/readocr/service/internal/jobs"
)

// Server-Sent Events of a job: how long one stream lasts (the client reconnects with
// Last-Event-ID, as EventSource does, and loses nothing), and how often a silent stream says
// it lives (proxies close idle connections).
const (
	eventStreamTime = 10 * time.Minute
	eventHeartbeat  = 15 * time.Second
)

// handleJobEvents is GET /jobs/{id}/events: page done, page failed and job done as they
// happen, each with its id (Last-Event-ID resumes after it) and the job as it stands.
func (s *Server) handleJobEvents(w http.ResponseWriter, r *http.Request) {
	if s.jobs == nil {
		s.fail(w, r, errJobsOff)
		return
	}
	var after uint64
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.fail(w, r, failure.New(failure.BadRequest, "Last-Event-ID must be an event's id (a number), as this stream sent it"))
			return
		}
		after = n
	}
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithTimeout(r.Context(), eventStreamTime)
	defer cancel()
	started := false
	err := s.jobs.Events(ctx, chi.URLParam(r, "id"), caller(r), after, eventHeartbeat, func(ev *jobs.Event) error {
		if !started {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) // a client that does not read is dropped
		var err error
		if ev == nil {
			_, err = fmt.Fprint(w, ": the job goes on\n\n")
		} else {
			data, _ := json.Marshal(ev)
			if ev.ID > 0 {
				fmt.Fprintf(w, "id: %d\n", ev.ID)
			}
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, data)
		}
		if err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && !started {
		s.fail(w, r, err)
	}
}
