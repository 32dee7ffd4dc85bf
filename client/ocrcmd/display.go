package ocrcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jedib0t/go-pretty/v6/progress"

	"github.com/readocr/readocr/client"
)

// reporter shows a run as it goes: bars on a terminal, a line per file otherwise, JSON lines
// with --json.
type reporter interface {
	start(in input) progressFunc // a file begins; the func is told its pages
	finish(o outcome)
	retry(e *client.Error, wait time.Duration)
	close()
}

// bars draws a bar per file being read (pages), and one for the files, on a terminal.
type bars struct {
	pw    progress.Writer
	files *progress.Tracker
	mu    sync.Mutex
	per   map[string]*progress.Tracker
}

func newBars(w io.Writer, files, parallel int) *bars {
	pw := progress.NewWriter()
	pw.SetOutputWriter(w)
	pw.SetAutoStop(false)
	pw.SetNumTrackersExpected(parallel + 1)
	pw.SetTrackerLength(24)
	pw.SetMessageLength(44)
	pw.SetStyle(progress.StyleBlocks)
	pw.SetUpdateFrequency(100 * time.Millisecond)
	pw.SetSortBy(progress.SortByIndex)
	pw.Style().Visibility.ETA = false
	pw.Style().Visibility.Value = true
	pw.Style().Options.DoneString = "read"
	pw.Style().Options.ErrorString = "FAILED"
	pw.Style().Options.TimeInProgressPrecision = 100 * time.Millisecond
	pw.Style().Options.TimeDonePrecision = 100 * time.Millisecond
	b := &bars{pw: pw, per: map[string]*progress.Tracker{},
		files: &progress.Tracker{Message: fmt.Sprintf("%d files", files), Total: int64(files), Index: 0}}
	pw.AppendTracker(b.files)
	go pw.Render()
	return b
}

func (b *bars) start(in input) progressFunc {
	b.mu.Lock()
	t := &progress.Tracker{Message: in.path, Index: uint64(len(b.per) + 1), AutoStopDisabled: true}
	b.per[in.path] = t
	b.mu.Unlock()
	b.pw.AppendTracker(t)
	return func(done, total int) {
		if total > 0 {
			t.UpdateTotal(int64(total))
			t.SetValue(int64(done))
		}
	}
}

func (b *bars) finish(o outcome) {
	b.mu.Lock()
	t := b.per[o.in.path]
	b.mu.Unlock()
	b.files.Increment(1)
	if t == nil { // skipped or missing: never started
		return
	}
	switch o.status {
	case statusRead:
		t.MarkAsDone()
	case statusFailed: // the summary says why in full
		if e, ok := client.AsError(o.err); ok {
			t.UpdateMessage(fmt.Sprintf("%s (%d %s)", o.in.path, e.Status, e.Code))
		}
		t.MarkAsErrored()
	default:
		t.UpdateMessage(o.in.path + ": " + o.status)
		t.MarkAsErrored()
	}
}

func (b *bars) retry(e *client.Error, wait time.Duration) {
	b.pw.Log("the service answered %d %s: waiting %v as it asks", e.Status, e.Code, wait)
}

func (b *bars) close() {
	b.pw.Stop()
	for b.pw.IsRenderInProgress() {
		time.Sleep(10 * time.Millisecond)
	}
}

// lines writes a line per file when it ends (not a terminal: logs, CI).
type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) start(input) progressFunc { return func(int, int) {} }

func (l *lines) finish(o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch o.status {
	case statusFailed:
		fmt.Fprintf(l.w, "failed   %s: %s\n", o.in.path, errorText(o.err))
	case statusRead:
		fmt.Fprintf(l.w, "read     %s (%s, %.1f s)\n", o.in.path, plural(o.pages, "page"), o.took.Seconds())
	default:
		fmt.Fprintf(l.w, "%-8s %s\n", o.status, o.in.path)
	}
}

func (l *lines) retry(e *client.Error, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "the service answered %d %s: waiting %v as it asks\n", e.Status, e.Code, wait)
}

func (l *lines) close() {}

// jsonLines writes each file's outcome as a JSON line (--json): for machines.
type jsonLines struct {
	mu sync.Mutex
	w  io.Writer
}

// fileRecord is a --json line.
type fileRecord struct {
	File    string   `json:"file"`
	Status  string   `json:"status"`
	Pages   int      `json:"pages,omitempty"`
	Outputs []string `json:"outputs,omitempty"`
	Jobs    []string `json:"jobs,omitempty"`
	Resumed bool     `json:"resumed,omitempty"`
	Seconds float64  `json:"seconds"`
	Error   *errRec  `json:"error,omitempty"`
}

type errRec struct {
	Status  int    `json:"status,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

func (j *jsonLines) start(input) progressFunc { return func(int, int) {} }

func (j *jsonLines) finish(o outcome) {
	rec := fileRecord{File: o.in.path, Status: o.status, Pages: o.pages, Outputs: o.outputs, Jobs: o.jobs,
		Resumed: o.resumed, Seconds: float64(o.took.Milliseconds()) / 1000}
	if o.err != nil {
		rec.Error = &errRec{Message: errorText(o.err)}
		if e, ok := client.AsError(o.err); ok {
			rec.Error = &errRec{Status: e.Status, Code: e.Code, Message: e.Message}
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	json.NewEncoder(j.w).Encode(rec)
}

func (j *jsonLines) retry(*client.Error, time.Duration) {}
func (j *jsonLines) close()                             {}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
