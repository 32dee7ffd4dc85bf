// Command ocrbench measures, in one run on the same image mix:
//
//  1. limit:   gosseract with one reused client per core, no HTTP (the ceiling);
//  2. service: the readocr binary under concurrent HTTP load (and, with -before, an earlier
//     build of it under the same load, for a before/after ratio);
//  3. cli:     today's design, one `tesseract` process per image (the baseline);
//  4. with -image, the container image under the same load;
//  5. with -soak, the service's memory over many requests;
//  6. with -worst, the peak memory of the costliest pages and hostile files each cap admits;
//  7. with -documents, a 20-page PDF on one worker and on all (fan-out), against the CLI
//     baselines, and a 50-page PDF's peak memory and its effect on single pages;
//  8. with -ocrmypdf, searchable PDFs of three documents against OCRmyPDF (ocrmypdf.go).
//  9. with -auth, API keys: what authentication and the shared limits cost a request, the
//     throughput with them, and a guessed key's timing (auth.go).
//
// Each mode runs in its own process(es) so that CPU time and memory are its own. The result
// is a Markdown report (stdout and -out). Files: limit.go, service.go, cli.go, worst.go,
// documents.go, auth.go, report.go.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// mix is the 640x480 page mix: the same page in six formats plus the original scan.
var mix = []string{"phototest.tif", "pyt_test.jpg", "pyt_test.gif", "pyt_test.webp", "pyt_test.bmp", "pyt_test.tiff"}

func main() {
	child := flag.String("child", "", "internal: run one mode in this process (limit)")
	n := flag.Int("n", 240, "images per mode")
	server := flag.String("server", "bin/readocr", "readocr binary for the service mode")
	before := flag.String("before", "", "an earlier readocr binary to measure under the same load (before/after)")
	conc := flag.Int("c", 2*runtime.NumCPU(), "concurrent HTTP clients in the service mode")
	soak := flag.Int("soak", 0, "requests in the memory soak (0: skip)")
	worst := flag.Bool("worst", false, "measure the peak memory of the worst pages the caps admit")
	out := flag.String("out", "", "also write the Markdown report here")
	img := flag.String("image", "", "also measure this container image (docker)")
	docs := flag.Bool("documents", false, "measure documents (PDF fan-out, baselines, a 50-page PDF)")
	withJobs := flag.Bool("jobs", false, "measure jobs against synchronous requests (throughput, queueing overhead)")
	searchable := flag.Bool("ocrmypdf", false, "measure searchable PDFs (format=pdf) against OCRmyPDF on three documents")
	only := flag.Bool("only", false, "run only the modes asked for by flags (-documents, -ocrmypdf, -pages, -tracing), not the throughput modes")
	withPages := flag.Bool("pages", false, "measure pages as tasks: a 40-page PDF as a job on 1 and 2 processes, small documents whole or split, single pages during a 300-page job")
	withTracing := flag.Bool("tracing", false, "measure tracing's cost: throughput with spans exported over OTLP against tracing off")
	withAuth := flag.Bool("auth", false, "measure API keys: the cost per request, throughput with keys and limits, a guessed key's timing")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	fail := func(what string, err error) {
		log.Error(what, "err", err)
		os.Exit(1)
	}

	images, err := loadMix()
	if err != nil {
		fail("loading images", err)
	}
	if *child == "limit" {
		json.NewEncoder(os.Stdout).Encode(runLimit(images, *n))
		return
	}

	if *only {
		if err := runOnly(log, *server, *before, *docs, *searchable, *withPages, *withTracing, *n, *conc, *out); err != nil {
			fail("benchmark", err)
		}
		return
	}
	cores := runtime.NumCPU()
	log.Info("benchmark", "images_per_mode", *n, "cores", cores, "http_clients", *conc)
	var rep report
	rep.n, rep.cores, rep.conc = *n, cores, *conc

	log.Info("mode: limit (gosseract, one reused client per core, no HTTP)")
	if rep.limit, err = limitInChild(*n); err != nil {
		fail("limit", err)
	}
	log.Info("mode: service under HTTP load")
	native, err := startNative(log, *server)
	if err != nil {
		fail("service", err)
	}
	defer native.stop()
	rep.service = runLoad(native, images, *n, *conc)
	if *before != "" {
		log.Info("mode: the earlier build under the same load", "binary", *before)
		old, err := startNative(log, *before)
		if err != nil {
			fail("before", err)
		}
		r := runLoad(old, images, *n, *conc)
		old.stop()
		rep.before = &r
	}
	log.Info("mode: tesseract CLI process per image")
	if rep.cli, err = runCLI(images, *n, cores); err != nil {
		fail("cli", err)
	}
	if *img != "" {
		log.Info("mode: the same load through the container image", "image", *img)
		if rep.container, err = runContainer(*img, images, *n, *conc, cores); err != nil {
			fail("container", err)
		}
	}
	if *docs {
		log.Info("mode: documents")
		if rep.docs, err = runDocuments(log, *server, images, rep.service.perSecond()); err != nil {
			fail("documents", err)
		}
	}
	if *searchable {
		log.Info("mode: searchable PDFs against OCRmyPDF")
		if rep.searchable, err = runSearchable(log, *server, *before); err != nil {
			fail("ocrmypdf", err)
		}
	}
	if *withJobs {
		log.Info("mode: jobs")
		if rep.jobs, err = runJobs(log, native, images, *n, *conc); err != nil {
			fail("jobs", err)
		}
	}
	if *withPages {
		log.Info("mode: pages as tasks")
		if rep.pages, err = runPages(log, *server); err != nil {
			fail("pages", err)
		}
	}
	if *withAuth {
		log.Info("mode: API keys")
		if rep.auth, err = runAuth(log, *server, native, images, *n, *conc); err != nil {
			fail("auth", err)
		}
	}
	if *withTracing {
		log.Info("mode: tracing")
		if rep.tracing, err = runTracing(log, *server, native, images, *n, *conc); err != nil {
			fail("tracing", err)
		}
	}
	// Memory comes last, so that the throughput modes above ran back to back.
	if *soak > 0 {
		rep.soak = runSoak(log, native, images, *soak, *conc)
	}
	native.stop()
	if *worst {
		if rep.worst, err = runWorst(log, *server); err != nil {
			fail("worst", err)
		}
	}

	text := rep.render()
	fmt.Print(text)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			fail("writing report", err)
		}
	}
}

// runOnly runs the document modes asked for, alone (while working on them), and prints their
// sections; with out, it writes them there too.
func runOnly(log *slog.Logger, server, before string, docs, searchable, pages, tracing bool, n, conc int, out string) error {
	var rep report
	var err error
	if docs {
		images, err := loadMix()
		if err != nil {
			return err
		}
		if rep.docs, err = runDocuments(log, server, images, 0); err != nil {
			return err
		}
	}
	if searchable {
		if rep.searchable, err = runSearchable(log, server, before); err != nil {
			return err
		}
	}
	if pages {
		if rep.pages, err = runPages(log, server); err != nil {
			return err
		}
	}
	if tracing {
		images, err := loadMix()
		if err != nil {
			return err
		}
		off, err := startNative(log, server)
		if err != nil {
			return err
		}
		rep.tracing, err = runTracing(log, server, off, images, n, conc)
		off.stop()
		if err != nil {
			return err
		}
	}
	var b strings.Builder
	rep.renderModes(&b)
	if rep.tracing != nil {
		rep.tracing.render(&b)
	}
	fmt.Print(b.String())
	if out != "" {
		return os.WriteFile(out, []byte(b.String()), 0o644)
	}
	return nil
}

type page struct {
	name, path string
	data       []byte
}

func loadMix() ([]page, error) {
	all, err := testimages.Load("images/")
	if err != nil {
		return nil, err
	}
	var out []page
	for _, name := range mix {
		for _, img := range all {
			if img.Name == name {
				out = append(out, page{img.Name, img.Path, img.Bytes})
			}
		}
	}
	if len(out) != len(mix) {
		return nil, fmt.Errorf("found %d of the %d mix images", len(out), len(mix))
	}
	return out, nil
}

// parallel calls f(worker, i) for every i in [0, n) from `workers` goroutines, each taking the
// next index as it finishes one.
func parallel(n, workers int, f func(worker, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(w, i)
			}
		})
	}
	wg.Wait()
}
