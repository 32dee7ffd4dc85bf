// Package langpacks gives tests language packs and model directories laid out as the service
// finds them: the image's own models (eng and osd) in one directory, packs in another.
//
// The packs are Debian's tesseract-ocr-* packages, unpacked (not installed: the system's
// model directory keeps only what make run needs) by hack/install-deps.sh --test with
// hack/langpacks.sh into $READOCR_CACHE/langpacks (~/.cache/readocr/langpacks).
package langpacks

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// Test are the packs hack/install-deps.sh --test unpacks: with the system's eng, ten languages
// (the memory tests load them all at once) and two script models.
var Test = []string{"deu", "fra", "jpn", "chi_sim", "rus", "spa", "ita", "por", "nld", "Latin", "Japanese"}

// Ten are ten languages, the most one request may name: eng (the image's) and nine packs,
// among them the costliest languages the tests have (chi_sim, jpn).
var Ten = []string{"eng", "deu", "fra", "jpn", "chi_sim", "rus", "spa", "ita", "por", "nld"}

// Cache is where hack/install-deps.sh --test unpacks the packs.
func Cache() string {
	dir := os.Getenv("READOCR_CACHE")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "readocr")
	}
	return filepath.Join(dir, "langpacks")
}

// Dir returns a new pack directory holding the named models (links into the cache) and their
// licences. Without the cache the test is skipped, or fails when READOCR_REQUIRE_LANGPACKS is
// set (make test sets it).
func Dir(t testing.TB, models ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range models {
		src := filepath.Join(Cache(), m+".traineddata")
		if _, err := os.Stat(src); err != nil {
			missing(t, src)
		}
		if err := os.Symlink(src, filepath.Join(dir, m+".traineddata")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func missing(t testing.TB, path string) {
	t.Helper()
	msg := path + " is missing: run hack/install-deps.sh --test (make test-deps), which unpacks the test language packs"
	if os.Getenv("READOCR_REQUIRE_LANGPACKS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// ImageTessdata returns a model directory like the service image's: eng and osd only, linked
// from the system's.
func ImageTessdata(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range []string{"eng", "osd"} {
		src := filepath.Join("/usr/share/tesseract-ocr/5/tessdata", m+".traineddata")
		if _, err := os.Stat(src); err != nil {
			t.Skipf("%s: %v (hack/install-deps.sh installs it)", src, err)
		}
		if err := os.Symlink(src, filepath.Join(dir, m+".traineddata")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Corrupt writes broken models into dir, each as a copy could leave one or a disk could
// damage one, and returns what each is: name → how it is broken. deu is the model they are
// made from.
func Corrupt(t testing.TB, dir string) map[string]string {
	t.Helper()
	good, err := os.ReadFile(filepath.Join(Cache(), "deu.traineddata"))
	if err != nil {
		missing(t, filepath.Join(Cache(), "deu.traineddata"))
	}
	cut := good[:len(good)/2] // an interrupted copy
	// The LSTM network's bytes garbled, the table of contents intact: Tesseract aborts the
	// process (ASSERT_HOST in tessedit.cpp) when it loads this.
	garbled := append([]byte(nil), good...)
	lstm := int(binary.LittleEndian.Uint64(garbled[4+8*17:]))
	for i := lstm + 100; i < lstm+300_000 && i < len(garbled); i += 97 {
		garbled[i] ^= 0x5a
	}
	files := map[string][]byte{
		"truncated": cut,
		"garbage":   []byte("<html>404 Not Found</html> (a download that went wrong)\n"),
		"empty":     nil,
		"garbled":   garbled,
	}
	what := map[string]string{"truncated": "the first half of deu", "garbage": "an HTML error page",
		"empty": "zero bytes", "garbled": "deu with its LSTM network's bytes changed"}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name+".traineddata"), b, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return what
}
