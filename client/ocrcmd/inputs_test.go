package ocrcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/client"
)

func touch(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Folders are walked for readable files (hidden ones and earlier runs' searchable PDFs left
// out), patterns the shell did not expand are expanded, a file is taken once, and a missing
// one is kept to be reported.
func TestExpand(t *testing.T) {
	d := t.TempDir()
	touch(t, d+"/a.png", d+"/a.ocr.pdf", d+"/a.txt", d+"/sub/b.PDF", d+"/.hidden/c.png", d+"/.d.png", d+"/notes.md", d+"/e.tif")
	ins, err := expand([]string{d, d + "/a.png", d + "/*.tif", d + "/missing.png"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		rel, _ := filepath.Rel(d, in.path)
		if in.missing != nil {
			rel += " (missing)"
		}
		got = append(got, rel)
	}
	if strings.Join(got, " ") != "a.png e.tif sub/b.PDF missing.png (missing)" {
		t.Errorf("inputs %q", got)
	}
	if _, err := expand([]string{d + "/*.jpg"}); err == nil {
		t.Error("a pattern matching nothing was accepted")
	}
}

// Outputs go next to each input or under --out (keeping the folder's layout); inputs that
// would write the same names keep their extension; a clash left after that is refused.
func TestPlace(t *testing.T) {
	d := t.TempDir()
	touch(t, d+"/in/a.png", d+"/in/a.jpg", d+"/in/sub/c.pdf", d+"/x/c.pdf")
	ins, _ := expand([]string{d + "/in"})
	if err := place(ins, ""); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		rel, _ := filepath.Rel(d, in.outBase)
		got = append(got, rel)
	}
	if strings.Join(got, " ") != "in/a.jpg in/a.png in/sub/c" {
		t.Errorf("next to inputs: %q", got)
	}
	ins, _ = expand([]string{d + "/in"})
	place(ins, d+"/out")
	if rel, _ := filepath.Rel(d, ins[2].outBase); rel != "out/sub/c" {
		t.Errorf("under --out: %s", rel)
	}
	ins, _ = expand([]string{d + "/in/sub/c.pdf", d + "/x/c.pdf"})
	if err := place(ins, d+"/out"); err == nil || !strings.Contains(err.Error(), "would both write") {
		t.Errorf("clash: %v", err)
	}
}

// A file is done when all its outputs are there and newer than it.
func TestDone(t *testing.T) {
	d := t.TempDir()
	touch(t, d+"/a.png")
	in := input{path: d + "/a.png", outBase: d + "/a"}
	formats := []client.Format{client.Text, client.PDF}
	if done(in, formats) {
		t.Fatal("done without outputs")
	}
	touch(t, d+"/a.txt", d+"/a.ocr.pdf")
	if !done(in, formats) {
		t.Fatal("not done with both outputs")
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(d+"/a.png", later, later) // the input changed since
	if done(in, formats) {
		t.Fatal("done although the input is newer")
	}
}

func TestParse(t *testing.T) {
	env := func(k string) string { return map[string]string{"READOCR_URL": "http://svc:1"}[k] }
	c, rest, err := parse([]string{"scans/", "--format", "txt,pdf,txt", "-n", "2", "b.png", "--force"}, env, os.Stderr)
	if err != nil || c.url != "http://svc:1" || c.parallel != 2 || !c.force || len(c.formats) != 2 || strings.Join(rest, " ") != "scans/ b.png" {
		t.Fatalf("%+v %q %v", c, rest, err)
	}
	for _, bad := range [][]string{{}, {"--format", "docx", "a"}, {"-n", "0", "a"}, {"--nope", "a"}} {
		if _, _, err := parse(bad, env, &strings.Builder{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
