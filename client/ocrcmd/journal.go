package ocrcmd

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/readocr/readocr/client"
)

// journal is kept next to an input's outputs while its jobs run: each job's idempotency key
// (written before the job is submitted) and its ID. A run stopped by Ctrl-C leaves it; the
// next run takes the same jobs up instead of sending the file again, and a submission cut off
// before its ID was written is found again by its key. It is removed when the input is done.
type journal struct {
	path    string
	Input   string                    `json:"input"`
	Size    int64                     `json:"size"`
	ModTime time.Time                 `json:"mtime"`
	Options string                    `json:"options"` // the options the jobs were asked with
	Jobs    map[client.Format]*jobRef `json:"jobs"`
}

type jobRef struct {
	Key string `json:"idempotency_key"`
	ID  string `json:"id,omitempty"`
}

func journalPath(outBase string) string {
	dir, name := filepath.Split(outBase)
	return filepath.Join(dir, "."+name+".readocr-jobs.json")
}

// openJournal returns in's journal: the one left by an earlier run for the same file (same
// size, time and options), or a new one. fresh ignores an earlier one (--force).
func openJournal(in input, options string, fresh bool) *journal {
	j := &journal{path: journalPath(in.outBase), Input: in.path, Options: options, Jobs: map[client.Format]*jobRef{}}
	if st, err := os.Stat(in.path); err == nil {
		j.Size, j.ModTime = st.Size(), st.ModTime().UTC()
	}
	if fresh {
		return j
	}
	var old journal
	if b, err := os.ReadFile(j.path); err == nil && json.Unmarshal(b, &old) == nil &&
		old.Size == j.Size && old.ModTime.Equal(j.ModTime) && old.Options == j.Options && old.Jobs != nil {
		j.Jobs = old.Jobs
	}
	return j
}

// ref returns the job of format f, with a new key if it has none yet (saved before use).
func (j *journal) ref(f client.Format) (*jobRef, error) {
	if r := j.Jobs[f]; r != nil {
		return r, nil
	}
	r := &jobRef{Key: "readocr-cli-" + rand.Text()}
	j.Jobs[f] = r
	return r, j.save()
}

func (j *journal) save() error {
	b, _ := json.MarshalIndent(j, "", " ")
	return writeFile(j.path, b)
}

func (j *journal) remove() { os.Remove(j.path) }
