package testsupport

import (
	"os"
	"path/filepath"
	"testing"
)

// PDFiumCache is a directory of PDFium's compiled code that the tests' OCR engines share
// (ocr.Config.PDFiumCache), so that the ~4 s compilation happens once per machine rather than
// once per engine. The service itself compiles into a directory only it can write.
func PDFiumCache(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "readocr-test-pdfium")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
