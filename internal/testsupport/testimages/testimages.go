// Package testimages loads the repository's OCR test images and their ground truth
// (testdata/ocr, described by MANIFEST.csv) for tests and benchmarks.
package testimages

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode"
)

// Image is one row of MANIFEST.csv with its bytes and expected text loaded.
type Image struct {
	Name     string // file name, e.g. "phototest.tif"
	Path     string
	Lang     string // languages the page is written in
	Expected string // ground truth, "" for the bad/ files
	Bytes    []byte
}

// Dir returns the absolute path of testdata/ocr.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "ocr")
}

// Load returns every image of the manifest whose path starts with prefix ("images/" or "bad/").
func Load(prefix string) ([]Image, error) {
	f, err := os.Open(filepath.Join(Dir(), "MANIFEST.csv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, r := range rows[1:] {
		if !strings.HasPrefix(r[0], prefix) {
			continue
		}
		img := Image{Name: filepath.Base(r[0]), Path: filepath.Join(Dir(), r[0]), Lang: r[3]}
		if img.Bytes, err = os.ReadFile(img.Path); err != nil {
			return nil, err
		}
		if r[4] != "" {
			gt, err := os.ReadFile(filepath.Join(Dir(), r[4]))
			if err != nil {
				return nil, err
			}
			img.Expected = string(gt)
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no images under %q in the manifest", prefix)
	}
	return out, nil
}

// All is Load for tests: it fails the test on error.
func All(tb testing.TB, prefix string) []Image {
	tb.Helper()
	images, err := Load(prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return images
}

// Get returns the manifest image with the given file name.
func Get(tb testing.TB, name string) Image {
	tb.Helper()
	for _, prefix := range []string{"images/", "bad/"} {
		for _, img := range All(tb, prefix) {
			if img.Name == name {
				return img
			}
		}
	}
	tb.Fatalf("no test image %q", name)
	return Image{}
}

// Normalize folds runs of white space (including blank lines) to one space and trims, so that
// layout-only differences do not count as recognition errors.
func Normalize(s string) string {
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}

// Accuracy is 1 - (edit distance / length of want) over runes of the normalised texts:
// 1 is a perfect read.
func Accuracy(got, want string) float64 {
	a, b := []rune(Normalize(got)), []rune(Normalize(want))
	if len(b) == 0 {
		if len(a) == 0 {
			return 1
		}
		return 0
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	acc := 1 - float64(prev[len(b)])/float64(len(b))
	return max(acc, 0)
}

// Must returns the manifest image with the given name, panicking if it is missing: for code
// outside a test's main goroutine.
func Must(name string) Image {
	images, err := Load("")
	if err != nil {
		panic(err)
	}
	for _, img := range images {
		if img.Name == name {
			return img
		}
	}
	panic("no test image " + name)
}
