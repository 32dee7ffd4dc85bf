package ocr

import (
	"context"
	"testing"

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
