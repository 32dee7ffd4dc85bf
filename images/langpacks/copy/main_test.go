package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A pack is copied file for file, read-only, without temporary files left; copied again (an
// init container run twice) nothing changes; a second pack joins the first; a changed file is
// replaced; a target that is not there is an error that says what to mount.
func TestCopyTree(t *testing.T) {
	write := func(path, s string) {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(s), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	deu, fra, to := t.TempDir(), t.TempDir(), t.TempDir()
	write(filepath.Join(deu, "deu.traineddata"), "deu model")
	write(filepath.Join(deu, "licenses", "tesseract-ocr-deu.copyright"), "Apache-2.0")
	write(filepath.Join(fra, "fra.traineddata"), "fra model")
	var log strings.Builder
	for _, from := range []string{deu, deu, fra} {
		if err := copyTree(from, to, &log); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(fra, "fra.traineddata"), "fra model, newer")
	if err := copyTree(fra, to, &log); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"deu.traineddata": "deu model", "licenses/tesseract-ocr-deu.copyright": "Apache-2.0",
		"fra.traineddata": "fra model, newer"}
	n := 0
	filepath.WalkDir(to, func(path string, d os.DirEntry, err error) error {
		if d.IsDir() {
			return nil
		}
		n++
		rel, _ := filepath.Rel(to, path)
		b, _ := os.ReadFile(path)
		fi, _ := d.Info()
		if string(b) != want[rel] || fi.Mode().Perm() != 0o444 {
			t.Errorf("%s: %q %v", rel, b, fi.Mode())
		}
		return nil
	})
	if n != len(want) {
		t.Errorf("%d files in the target, want %d", n, len(want))
	}
	if got := log.String(); strings.Count(got, "copied") != 4 || !strings.Contains(got, "kept deu.traineddata (already there)") {
		t.Errorf("log:\n%s", got)
	}
	if err := copyTree(deu, filepath.Join(to, "nope"), io.Discard); err == nil || !strings.Contains(err.Error(), "mount") {
		t.Errorf("a missing target: %v", err)
	}
}
