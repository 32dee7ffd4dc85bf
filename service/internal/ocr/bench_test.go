package ocr

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/readocr/readocr/internal/testsupport/langpacks"
	"github.com/readocr/readocr/internal/testsupport/testimages"
	"github.com/readocr/readocr/service/internal/tessconfig"
)

// BenchmarkRecognize compares plain text with text plus layout on one reused client: layout
// must not recognise the page twice.
func BenchmarkRecognize(b *testing.B) {
	e := newEngine(b, Config{Workers: 1})
	img := testimages.Get(b, "phototest.tif").Bytes
	for _, layout := range []bool{false, true} {
		name := map[bool]string{false: "text", true: "layout"}[layout]
		b.Run(name, func(b *testing.B) {
			req := Request{Page: page(b, img), Options: tessconfig.Options{PSM: -1}, Layout: layout}
			for b.Loop() {
				if _, err := e.Recognize(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProbeModel is what each model adds to the service's start: a process that loads it
// alone and measures it (langprobe.go). eng is the image's; jpn and Latin the costliest kinds.
func BenchmarkProbeModel(b *testing.B) {
	packs := langpacks.Dir(b, "jpn", "Latin")
	for _, path := range []string{"/usr/share/tesseract-ocr/5/tessdata/eng.traineddata",
		filepath.Join(packs, "jpn.traineddata"), filepath.Join(packs, "Latin.traineddata")} {
		b.Run(strings.TrimSuffix(filepath.Base(path), ".traineddata"), func(b *testing.B) {
			for b.Loop() {
				if r := probeOne(context.Background(), path, 1<<30); r.problem != "" {
					b.Fatal(r.problem)
				}
			}
		})
	}
}
