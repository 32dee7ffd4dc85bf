// Package ocrcmd is `readocr ocr`: images and documents read by a readocr service, many at a
// time, with progress, the outputs written next to each input (or under --out), files already
// done skipped, and a run stopped by Ctrl-C taken up where it was by the next.
package ocrcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/readocr/readocr/client"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1   // some file failed (the summary lists them)
	exitUsage       = 2   // bad flags or arguments; nothing was sent
	exitService     = 3   // the service cannot be reached or refuses the key; nothing was sent
	exitInterrupted = 130 // Ctrl-C (128 + SIGINT): the next run takes the jobs up
)

const usage = `usage: readocr ocr [flags] FILE|DIR|GLOB...

Reads images and documents with a readocr service and writes NAME.txt (and the other
--format outputs) next to each input, or under --out. Several files, PDFs and TIFFs are
sent as jobs; a file whose outputs are there already is skipped (--force redoes it); a run
stopped with Ctrl-C is taken up where it was by the same command.

Exit status: 0 all read, 1 some failed, 2 usage, 3 service unreachable or key refused,
130 interrupted.

Flags:
`

type config struct {
	url, key, out  string
	formats        []client.Format
	lang, pages    string
	tessConfig     string
	parallel       int
	force, jsonOut bool
	retries        int
}

// parse reads flags given anywhere among the arguments (readocr ocr scans/ --out txt/).
func parse(args []string, getenv func(string) string, stderr io.Writer) (config, []string, error) {
	var c config
	fs := flag.NewFlagSet("readocr ocr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	def := func(env, fallback string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&c.url, "url", def("READOCR_URL", "http://localhost:4000"), "the service (env READOCR_URL)")
	fs.StringVar(&c.key, "key", getenv("READOCR_API_KEY"), "API key, sent as Authorization: Bearer (env READOCR_API_KEY)")
	fs.StringVar(&c.out, "out", "", "write the outputs under this folder instead of next to each input")
	formats := fs.String("format", "txt", "outputs, comma-separated: txt, json, hocr, alto, tsv, pdf (searchable PDF: NAME.ocr.pdf)")
	fs.StringVar(&c.lang, "lang", "", "languages joined with + (default: the service's)")
	fs.StringVar(&c.pages, "pages", "", "pages of PDFs and TIFFs, e.g. 1-3,7 (default: all)")
	fs.StringVar(&c.tessConfig, "config", "", "Tesseract options, e.g. '--psm 6'")
	fs.IntVar(&c.parallel, "n", 4, "files read at once")
	fs.IntVar(&c.parallel, "parallel", 4, "files read at once (same as -n)")
	fs.BoolVar(&c.force, "force", false, "read files again even if their outputs are there")
	fs.BoolVar(&c.jsonOut, "json", false, "a JSON line per file and a summary line on stdout, no progress bars")
	fs.IntVar(&c.retries, "retries", client.DefaultMaxRetries, "429/503 answers waited out per request (Retry-After)")
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return c, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		rest, args = append(rest, fs.Arg(0)), fs.Args()[1:]
	}
	if len(rest) == 0 {
		fs.Usage()
		return c, nil, errors.New("no FILE, DIR or GLOB given")
	}
	if c.parallel < 1 {
		return c, nil, errors.New("-n must be at least 1")
	}
	for _, name := range strings.Split(*formats, ",") {
		name = strings.TrimSpace(name)
		if name == "txt" {
			name = "text"
		}
		f, err := client.ParseFormat(name)
		if err != nil {
			return c, nil, fmt.Errorf("--format: %w", err)
		}
		if !contains(c.formats, f) {
			c.formats = append(c.formats, f)
		}
	}
	return c, rest, nil
}

// Main runs `readocr ocr args` and returns its exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		<-sig
		cancel(errors.New("interrupted"))
		<-sig // a second Ctrl-C: leave at once
		os.Exit(exitInterrupted)
	}()
	return run(ctx, args, os.Getenv, stdout, stderr, isTerminal(stderr))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, tty bool) int {
	cfg, paths, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	} else if err != nil {
		fmt.Fprintln(stderr, "readocr ocr:", err)
		return exitUsage
	}
	ins, err := expand(paths)
	if err == nil {
		err = place(ins, cfg.out)
	}
	if err != nil {
		fmt.Fprintln(stderr, "readocr ocr:", err)
		return exitUsage
	}
	c, err := client.New(cfg.url, cfg.key)
	if err != nil {
		fmt.Fprintln(stderr, "readocr ocr:", err)
		return exitUsage
	}
	c.MaxRetries = cfg.retries
	// One question first: a service that cannot be reached, or refuses the key, fails the run
	// once rather than every file.
	if _, err := c.Languages(ctx); err != nil {
		if e, ok := client.AsError(err); !ok || e.Status == 401 || e.Status == 403 {
			fmt.Fprintf(stderr, "readocr ocr: the service at %s: %v\n", c.URL(), err)
			return exitService
		}
	}
	var rep reporter
	switch {
	case cfg.jsonOut:
		rep = &jsonLines{w: stdout}
	case tty:
		rep = newBars(stderr, len(ins), cfg.parallel)
	default:
		rep = &lines{w: stderr}
	}
	c.OnRetry = rep.retry
	start := time.Now()
	outcomes := readAll(ctx, newWorker(c, cfg, len(ins) > 1), ins, cfg.parallel, rep)
	rep.close()
	return summarize(outcomes, time.Since(start), cfg.jsonOut, stdout)
}

// readAll reads the inputs, parallel at a time, until all are done or ctx ends.
func readAll(ctx context.Context, w *worker, ins []input, parallel int, rep reporter) []outcome {
	outcomes := make([]outcome, len(ins))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, len(ins)) {
		wg.Go(func() {
			for i := range next {
				var progress progressFunc = func(int, int) {}
				if ins[i].missing == nil && (w.force || !done(ins[i], w.formats)) {
					progress = rep.start(ins[i])
				}
				outcomes[i] = w.read(ctx, ins[i], progress)
				rep.finish(outcomes[i])
			}
		})
	}
	i := 0
	for ; i < len(ins); i++ {
		select {
		case next <- i:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(next)
	wg.Wait()
	for ; i < len(ins); i++ { // never started
		outcomes[i] = outcome{in: ins[i], status: statusInterrupted}
	}
	return outcomes
}

// summarize prints the run's summary and returns the exit status.
func summarize(outcomes []outcome, took time.Duration, jsonOut bool, stdout io.Writer) int {
	count := map[string]int{}
	pages := 0
	var failed, interrupted []outcome
	for _, o := range outcomes {
		count[o.status]++
		pages += o.pages
		switch o.status {
		case statusFailed:
			failed = append(failed, o)
		case statusInterrupted:
			interrupted = append(interrupted, o)
		}
	}
	status := exitOK
	switch {
	case len(interrupted) > 0:
		status = exitInterrupted
	case len(failed) > 0:
		status = exitFailed
	}
	if jsonOut {
		fmt.Fprintf(stdout, `{"summary":{"files":%d,"read":%d,"skipped":%d,"failed":%d,"interrupted":%d,"pages":%d,"seconds":%.1f,"exit":%d}}`+"\n",
			len(outcomes), count[statusRead], count[statusSkipped], count[statusFailed], count[statusInterrupted], pages, took.Seconds(), status)
		return status
	}
	fmt.Fprintf(stdout, "%s: %d read, %d skipped (done before), %d failed", plural(len(outcomes), "file"), count[statusRead], count[statusSkipped], count[statusFailed])
	if len(interrupted) > 0 {
		fmt.Fprintf(stdout, ", %d interrupted", len(interrupted))
	}
	fmt.Fprintf(stdout, "; %s in %.1f s\n", plural(pages, "page"), took.Seconds())
	sort.Slice(failed, func(a, b int) bool { return failed[a].in.path < failed[b].in.path })
	for _, o := range failed {
		fmt.Fprintf(stdout, "  failed: %s: %s\n", o.in.path, errorText(o.err))
	}
	if len(interrupted) > 0 {
		fmt.Fprintln(stdout, "interrupted: run the same command again to go on (jobs already queued are taken up, not sent again)")
	}
	return status
}
