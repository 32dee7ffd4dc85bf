package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/readocr/readocr/internal/testsupport/proctree"
	"github.com/readocr/readocr/internal/testsupport/testdocs"
)

// The searchable-PDF comparison: readocr's format=pdf against OCRmyPDF (Debian's, the tool
// users of scanned PDFs already have) on the same documents, the same cores, one run each.

// searchDoc is one benchmark document.
type searchDoc struct {
	name, what string
	pages      int
	pdf        []byte
	ocrmypdf   []string // OCRmyPDF's options besides -j and the files
}

// searchRun is one tool on one document.
type searchRun struct {
	how     string
	took    time.Duration
	cpu     time.Duration
	size    int
	words   int
	peakKiB int64 // readocr's API and workers, over their idle memory
}

type searchRow struct {
	doc  searchDoc
	runs []searchRun // readocr first, OCRmyPDF (the baseline) second, others after
}

type searchReport struct {
	cores   int
	version string
	rows    []searchRow
}

func searchDocs() ([]searchDoc, error) {
	bilevel, err := testdocs.BilevelScanPDF(21)
	if err != nil {
		return nil, err
	}
	colour, err := testdocs.ColourScanPDF(10)
	if err != nil {
		return nil, err
	}
	mixed, err := testdocs.MixedReportPDF(20)
	if err != nil {
		return nil, err
	}
	base := []string{"--output-type", "pdf", "--optimize", "0"}
	return []searchDoc{
		{"bilevel scan", "21 Letter pages, 300 DPI bilevel CCITT G4", 21, bilevel, base},
		{"colour scan", "10 Letter pages, 300 DPI RGB JPEG", 10, colour, base},
		{"mixed", "20 Letter pages, born-digital (text, a rule, a link, a bookmark) and bilevel scans alternating", 20, mixed,
			append([]string{"--skip-text"}, base...)},
	}, nil
}

// runSearchable measures each document through readocr (format=pdf; and text, for the first)
// and OCRmyPDF (-j cores; and with its defaults, PDF/A and optimisation, for the first); with
// before, the first document through that earlier build too.
func runSearchable(log *slog.Logger, bin, before string) (*searchReport, error) {
	for _, tool := range []string{"ocrmypdf", "pdftotext"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("the searchable-PDF comparison needs %s (hack/install-deps.sh --bench installs OCRmyPDF): %w", tool, err)
		}
	}
	docs, err := searchDocs()
	if err != nil {
		return nil, err
	}
	cores := runtime.NumCPU()
	version, _ := exec.Command("ocrmypdf", "--version").Output()
	rep := &searchReport{cores: cores, version: strings.TrimSpace(string(version))}
	// OCRmyPDF renices itself by 5; the service gets the same niceness, so that on a shared
	// machine neither gets a larger share of the cores.
	t, err := startNiced(log, bin)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	dir, err := os.MkdirTemp("", "ocrbench-searchable-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if _, _, err := postPDF(t, testdocs.ScannedPDF(repeatPage(mustDocPage(), 1), 300), "pdf"); err != nil { // warm: PDFium loaded
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	for i, d := range docs {
		log.Info("searchable PDF", "document", d.name, "pages", d.pages)
		row := searchRow{doc: d}
		in := filepath.Join(dir, fmt.Sprintf("in-%d.pdf", i))
		if err := os.WriteFile(in, d.pdf, 0o600); err != nil {
			return nil, err
		}
		r, err := readocrRun(t, d, "pdf", dir)
		if err != nil {
			return nil, fmt.Errorf("%s: readocr: %w", d.name, err)
		}
		row.runs = append(row.runs, r)
		b, err := ocrmypdfRun(in, filepath.Join(dir, fmt.Sprintf("o-%d.pdf", i)), cores, d.ocrmypdf)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		row.runs = append(row.runs, b)
		if i == 0 && before != "" {
			old, err := startNiced(log, before)
			if err != nil {
				return nil, err
			}
			postPDF(old, testdocs.ScannedPDF(repeatPage(mustDocPage(), 1), 300), "pdf")
			r, err := readocrRun(old, d, "pdf", dir)
			old.stop()
			if err != nil {
				return nil, fmt.Errorf("%s: the earlier build: %w", d.name, err)
			}
			r.how = "before: the earlier build, format=pdf"
			row.runs = append(row.runs, r)
		}
		if i == 0 {
			if r, err = readocrRun(t, d, "text", dir); err != nil {
				return nil, fmt.Errorf("%s: readocr text: %w", d.name, err)
			}
			row.runs = append(row.runs, r)
			if b, err = ocrmypdfRun(in, filepath.Join(dir, "o-defaults.pdf"), cores, nil); err != nil {
				return nil, fmt.Errorf("%s: %w", d.name, err)
			}
			row.runs = append(row.runs, b)
		}
		rep.rows = append(rep.rows, row)
	}
	return rep, nil
}

// ocrmypdfNice is the niceness OCRmyPDF gives itself (os.nice(5) in its __main__).
const ocrmypdfNice = 5

// startNiced starts the service (and so its workers) at OCRmyPDF's niceness: this process is
// reniced while it starts it, then set back for OCRmyPDF, which renices itself.
func startNiced(log *slog.Logger, bin string) (target, error) {
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, ocrmypdfNice); err != nil {
		return target{}, err
	}
	t, err := startNative(log, bin, "--request-timeout", "10m")
	if err := errors.Join(err, syscall.Setpriority(syscall.PRIO_PROCESS, 0, 0)); err != nil {
		if t.stop != nil {
			t.stop()
		}
		return target{}, fmt.Errorf("%w (setting the niceness back needs root)", err)
	}
	return t, nil
}

// postPDF posts doc as a multipart upload in format and returns the answer and its time.
func postPDF(t target, doc []byte, format string) ([]byte, time.Duration, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("format", format)
	fw, _ := mw.CreateFormFile("image", "doc.pdf")
	fw.Write(doc)
	mw.Close()
	began := time.Now()
	resp, err := http.Post(t.base+"/read_ocr", mw.FormDataContentType(), &body)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	took := time.Since(began)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != 200 {
		return nil, 0, fmt.Errorf("status %d: %.300s", resp.StatusCode, answer)
	}
	return answer, took, nil
}

func readocrRun(t target, d searchDoc, format, dir string) (searchRun, error) {
	cpu, idle := proctree.CPU(t.pid), proctree.KiB(t.pid, "VmRSS")
	stopPeak := proctree.Peak(t.pid, 20*time.Millisecond)
	answer, took, err := postPDF(t, d.pdf, format)
	peak := stopPeak()
	if err != nil {
		return searchRun{}, err
	}
	r := searchRun{how: fmt.Sprintf("readocr format=%s", format), took: took, cpu: proctree.CPU(t.pid) - cpu, peakKiB: peak - idle}
	if format != "pdf" {
		var text struct{ Text string }
		err := json.Unmarshal(answer, &text)
		r.words = len(strings.Fields(text.Text))
		return r, err
	}
	out := filepath.Join(dir, "readocr.pdf")
	if err := os.WriteFile(out, answer, 0o600); err != nil {
		return r, err
	}
	r.size = len(answer)
	r.words, err = pdfWordCount(out)
	return r, err
}

func ocrmypdfRun(in, out string, cores int, opts []string) (searchRun, error) {
	args := append([]string{"-q", "-j", strconv.Itoa(cores)}, opts...)
	cmd := exec.Command("ocrmypdf", append(args, in, out)...)
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return searchRun{}, fmt.Errorf("ocrmypdf %v: %v: %s", args, err, stderr.Bytes())
	}
	r := searchRun{how: "OCRmyPDF " + strings.Join(args[1:], " "), took: time.Since(began),
		cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if opts == nil {
		r.how += " (defaults: PDF/A-2b, --optimize 1)"
	}
	info, err := os.Stat(out)
	if err != nil {
		return r, err
	}
	r.size = int(info.Size())
	r.words, err = pdfWordCount(out)
	return r, err
}

func pdfWordCount(path string) (int, error) {
	out, err := exec.Command("pdftotext", path, "-").Output()
	if err != nil {
		return 0, fmt.Errorf("pdftotext %s: %w", path, err)
	}
	return len(strings.Fields(string(out))), nil
}

func mustDocPage() image.Image {
	pg, err := docPage()
	if err != nil {
		panic(err)
	}
	return pg
}

func (s *searchReport) render(b *strings.Builder) {
	fmt.Fprintf(b, "\n### Searchable PDFs against OCRmyPDF\n\n%s from Debian, `-j %d` (the service has %d workers), the same documents one after the other, one run each; OMP_THREAD_LIMIT=1 and niceness %d (OCRmyPDF's own) for both. "+
		"CPU is the service's (API and workers) or OCRmyPDF's with its children (tesseract, Ghostscript). Words: `pdftotext` of the output (of format=text: its text).\n\n", s.version, s.cores, s.cores, ocrmypdfNice)
	b.WriteString("| document | how | time s | CPU s | output KB | words | time / OCRmyPDF | CPU / OCRmyPDF | size / OCRmyPDF | words / OCRmyPDF | peak MiB over idle |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range s.rows {
		base := row.runs[1]
		for _, r := range row.runs {
			size, sizeRatio, wordRatio := "", "", ""
			if r.size > 0 {
				size, sizeRatio = fmt.Sprintf("%d", r.size/1000), fmt.Sprintf("%.2f", float64(r.size)/float64(base.size))
			}
			if r.words > 0 {
				wordRatio = fmt.Sprintf("%.3f", float64(r.words)/float64(base.words))
			}
			peak := ""
			if r.peakKiB > 0 {
				peak = fmt.Sprintf("%.0f", float64(r.peakKiB)/1024)
			}
			fmt.Fprintf(b, "| %s (%d pages, %d KB) | %s | %.1f | %.1f | %s | %d | %.2f | %.2f | %s | %s | %s |\n", row.doc.name, row.doc.pages, len(row.doc.pdf)/1000,
				r.how, r.took.Seconds(), r.cpu.Seconds(), size, r.words, r.took.Seconds()/base.took.Seconds(), r.cpu.Seconds()/base.cpu.Seconds(), sizeRatio, wordRatio, peak)
		}
	}
	b.WriteString("\nDocuments (made by `internal/testsupport/testdocs` from the test images): ")
	for i, row := range s.rows {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(b, "%s: %s", row.doc.name, row.doc.what)
	}
	b.WriteString(".\n")
}
