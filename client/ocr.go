package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// File is an image or a document to upload. Open is called for each attempt (a 429 is
// retried with the body sent again), and the file is streamed, never held whole in memory.
type File struct {
	Name string // the part's file name; the service never trusts it (it sniffs the bytes)
	Open func() (io.ReadCloser, error)
}

// FromPath is the file at path.
func FromPath(path string) File {
	return File{Name: filepath.Base(path), Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// FromBytes is b, named name.
func FromBytes(name string, b []byte) File {
	return File{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// formFields lists the non-zero fields of structs whose fields have form tags, in order.
func formFields(structs ...any) [][2]string {
	var out [][2]string
	for _, s := range structs {
		v := reflect.ValueOf(s)
		for i := range v.NumField() {
			name := v.Type().Field(i).Tag.Get("form")
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				if f.String() != "" {
					out = append(out, [2]string{name, f.String()})
				}
			case reflect.Bool:
				if f.Bool() {
					out = append(out, [2]string{name, "true"})
				}
			}
		}
	}
	return out
}

// multipartBody streams fields and f as multipart/form-data.
func multipartBody(f File, fields [][2]string) func() (io.ReadCloser, string, error) {
	return func() (io.ReadCloser, string, error) {
		src, err := f.Open()
		if err != nil {
			return nil, "", err
		}
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			defer src.Close()
			for _, kv := range fields {
				if err := mw.WriteField(kv[0], kv[1]); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			part, err := mw.CreateFormFile("image", f.Name)
			if err == nil {
				_, err = io.Copy(part, src)
			}
			if err == nil {
				err = mw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, mw.FormDataContentType(), nil
	}
}

// readResult reads a 2xx answer's body.
func readResult(resp *http.Response) (*Result, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Result{ContentType: resp.Header.Get("Content-Type"), Body: b}, nil
}

// Read is POST /read_ocr: f read at once, the answer in o.Format.
func (c *Client) Read(ctx context.Context, f File, o Options) (*Result, error) {
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/read_ocr", body: multipartBody(f, formFields(o))})
	if err != nil {
		return nil, err
	}
	return readResult(resp)
}

// Submit is POST /jobs: f queued, to be read in o.Format.
func (c *Client) Submit(ctx context.Context, f File, o Options, jo JobOptions) (*Job, error) {
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "/jobs", body: multipartBody(f, formFields(o, jo))})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var j Job
	return &j, decode(resp, &j)
}

func jobPath(id string) string { return "/jobs/" + url.PathEscape(id) }

// Job is GET /jobs/{id}.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	return &j, c.getJSON(ctx, jobPath(id), &j)
}

// JobResult is GET /jobs/{id}/result: a succeeded job's output, or the error /read_ocr would
// have answered.
func (c *Client) JobResult(ctx context.Context, id string) (*Result, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: jobPath(id) + "/result"})
	if err != nil {
		return nil, err
	}
	return readResult(resp)
}

// DeleteJob is DELETE /jobs/{id}: cancels a job not finished, deletes a finished one.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	resp, err := c.do(ctx, request{method: http.MethodDelete, path: jobPath(id)})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Wait follows job id until it is done and returns it, telling progress (if not nil) of each
// change. It listens to the job's events when the service offers them, and polls otherwise.
func (c *Client) Wait(ctx context.Context, id string, progress func(*Job)) (*Job, error) {
	if progress == nil {
		progress = func(*Job) {}
	}
	var last Job
	if !c.noEvents.Load() {
		j, err := c.follow(ctx, id, progress, &last)
		if j != nil || err != nil {
			return j, err
		}
	}
	return c.poll(ctx, id, progress, last)
}

// follow reads GET /jobs/{id}/events, each event's data a Job. It returns (nil, nil) when the
// service has no events or the stream ended before the job did: then the caller polls. last is
// the job as last told.
func (c *Client) follow(ctx context.Context, id string, progress func(*Job), last *Job) (*Job, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: jobPath(id) + "/events", accept: "text/event-stream"})
	if e, ok := AsError(err); ok && (e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed) {
		// No events here, or no such job: asking for the job tells which.
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		c.noEvents.Store(true)
		progress(j)
		*last = *j
		if j.Status.Done() {
			return j, nil
		}
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.noEvents.Store(true)
		return nil, nil
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "data:"); ok {
			data.WriteString(strings.TrimPrefix(d, " "))
			continue
		}
		if line != "" || data.Len() == 0 {
			continue
		}
		var j Job
		if json.Unmarshal([]byte(data.String()), &j) == nil && j.Status != "" {
			progress(&j)
			*last = j
			if j.Status.Done() {
				return &j, nil
			}
		}
		data.Reset()
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return nil, nil
}

// poll asks for the job until it is done, every PollInterval at first, then less often, and
// tells progress of each change from last.
func (c *Client) poll(ctx context.Context, id string, progress func(*Job), last Job) (*Job, error) {
	interval := c.PollInterval
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.Status != last.Status || j.Progress != last.Progress {
			progress(j)
			last = *j
		}
		if j.Status.Done() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(interval):
		}
		interval = min(interval*3/2, maxPollInterval)
	}
}

// JobFailure is the *Error of a job that failed or was canceled, as its result would answer.
func JobFailure(j *Job) error {
	switch {
	case j.Status == Succeeded, j.Status == SucceededWithErrors: // its result marks the pages not read
		return nil
	case j.Error != nil:
		return &Error{Code: j.Error.Code, Message: j.Error.Message}
	default:
		return &Error{Code: "job_" + string(j.Status), Message: "the job was " + string(j.Status) + " (" + strconv.Itoa(j.Attempts) + " attempts)"}
	}
}
