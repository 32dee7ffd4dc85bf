package ocrcmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/readocr/readocr/client"
)

// readable are the extensions taken from a folder (a file named on the command line is sent
// whatever its name: the service sniffs the bytes).
var readable = []string{".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".webp", ".bmp", ".pnm", ".pbm", ".pgm", ".ppm"}

// searchableSuffix names the searchable PDF written for an input: never the input itself, and
// never taken for an input by the next run over the folder.
const searchableSuffix = ".ocr.pdf"

// extension is the file written for each format.
var extension = map[client.Format]string{client.Text: ".txt", client.JSON: ".json", client.HOCR: ".hocr",
	client.ALTO: ".alto.xml", client.TSV: ".tsv", client.PDF: searchableSuffix}

// input is one file to read and where its outputs go.
type input struct {
	path    string // as found
	missing error  // a named file that is not there (reported as a failure)
	outBase string // outputs are outBase + extension
}

// expand turns FILE|DIR|GLOB arguments into the inputs, in order, each once. Folders are
// walked (hidden entries and searchable PDFs written by earlier runs skipped); a pattern the
// shell did not expand is expanded here.
func expand(args []string) ([]input, error) {
	var out []input
	seen := map[string]bool{}
	add := func(path, root string) {
		abs, _ := filepath.Abs(path)
		if !seen[abs] {
			seen[abs] = true
			out = append(out, input{path: path, outBase: root})
		}
	}
	for _, arg := range args {
		paths := []string{arg}
		if _, err := os.Stat(arg); errors.Is(err, fs.ErrNotExist) && strings.ContainsAny(arg, "*?[") {
			m, err := filepath.Glob(arg)
			if err != nil || len(m) == 0 {
				return nil, fmt.Errorf("%s: no file matches", arg)
			}
			paths = m
		}
		for _, p := range paths {
			st, err := os.Stat(p)
			switch {
			case err != nil:
				out = append(out, input{path: p, missing: err})
			case st.IsDir():
				if err := walk(p, add); err != nil {
					return nil, err
				}
			default:
				add(p, "")
			}
		}
	}
	return out, nil
}

func walk(dir string, add func(path, root string)) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		lower := strings.ToLower(name)
		if d.Type().IsRegular() && slices.Contains(readable, filepath.Ext(lower)) && !strings.HasSuffix(lower, searchableSuffix) {
			add(p, dir)
		}
		return nil
	})
}

// place decides each input's outputs: next to it, or under out (keeping the path below the
// folder it was found in). Two inputs that would write the same files (a.png and a.jpg) keep
// their extension in the name (a.png.txt); a clash left after that is an error.
func place(ins []input, out string) error {
	base := func(in input, keepExt bool) string {
		name := filepath.Base(in.path)
		if !keepExt {
			name = strings.TrimSuffix(name, filepath.Ext(name))
		}
		if out == "" {
			return filepath.Join(filepath.Dir(in.path), name)
		}
		rel := name
		if in.outBase != "" { // found in a folder: keep its place below it
			if r, err := filepath.Rel(in.outBase, filepath.Dir(in.path)); err == nil {
				rel = filepath.Join(r, name)
			}
		}
		return filepath.Join(out, rel)
	}
	count := map[string]int{}
	for _, in := range ins {
		count[base(in, false)]++
	}
	owner := map[string]string{}
	for i := range ins {
		b := base(ins[i], false)
		if count[b] > 1 {
			b = base(ins[i], true)
		}
		if prev, ok := owner[b]; ok {
			return fmt.Errorf("%s and %s would both write %s.*: name them apart or use --out", prev, ins[i].path, b)
		}
		owner[b], ins[i].outBase = ins[i].path, b
	}
	return nil
}

// sniff tells documents (PDF, TIFF: read as jobs) from single images.
func sniff(path string) (doc bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	switch s := string(head[:n]); s {
	case "%PDF", "II*\x00", "MM\x00*":
		return true, nil
	}
	return false, nil
}

// done reports whether every output of in exists and is newer than in (then it is skipped).
func done(in input, formats []client.Format) bool {
	st, err := os.Stat(in.path)
	if err != nil {
		return false
	}
	for _, f := range formats {
		o, err := os.Stat(in.outBase + extension[f])
		if err != nil || o.ModTime().Before(st.ModTime()) {
			return false
		}
	}
	return true
}

// writeFile writes b to path whole or not at all (an interrupted run leaves no half file
// that the next run would take for done).
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	os.Chmod(tmp.Name(), 0o644)
	return os.Rename(tmp.Name(), path)
}
