package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/otiai10/gosseract/v2"
)

type result struct {
	Name       string
	Images     int
	Wall       time.Duration
	Latencies  []time.Duration
	CPU        time.Duration
	PeakRSSKiB int64
	Errors     int
}

func (r result) perSecond() float64 { return float64(r.Images) / r.Wall.Seconds() }
func (r result) cpuMS() float64     { return float64(r.CPU.Milliseconds()) / float64(r.Images) }
func (r result) pct(p float64) time.Duration {
	l := slices.Clone(r.Latencies)
	slices.Sort(l)
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

// report is everything one run measured.
type report struct {
	n, cores, conc int
	limit, service result
	before         *result
	cli            result
	container      *containerRow
	soak           []soakRow
	worst          *worstReport
	docs           *docReport
	searchable     *searchReport
	jobs           *jobsReport
	auth           *authReport
	pages          *pagesReport
	tracing        *tracingReport
}

func (rep report) render() string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "## OCR throughput, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "%d images per mode, the 640x480 mix (%s), %d cores (%s), %s, tesseract %s.\n",
		rep.n, strings.Join(mix, ", "), rep.cores, host, runtime.Version(), gosseract.Version())
	fmt.Fprintf(&b, "Service: %d concurrent HTTP clients, base64 JSON bodies; its CPU and memory are those of the API process and its OCR workers together. CLI: %d processes at a time. OMP_THREAD_LIMIT=1 everywhere.\n\n", rep.conc, rep.cores)
	b.WriteString("| mode | images/s | p50 ms | p95 ms | p99 ms | CPU ms/image | peak RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	rows := []result{rep.limit, rep.service}
	if rep.before != nil {
		r := *rep.before
		r.Name = "before: the earlier build, same load"
		rows = append(rows, r)
	}
	rows = append(rows, rep.cli)
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %.1f | %d | %d | %d | %.0f | %.0f | %d |\n", r.Name, r.perSecond(),
			r.pct(.50).Milliseconds(), r.pct(.95).Milliseconds(), r.pct(.99).Milliseconds(), r.cpuMS(), float64(r.PeakRSSKiB)/1024, r.Errors)
	}
	limit, svc, cli := rep.limit, rep.service, rep.cli
	fmt.Fprintf(&b, "\nRatios (same run): service/limit throughput **%.2f**, service/CLI throughput **%.2f**, "+
		"CLI/service CPU per image **%.2f**", svc.perSecond()/limit.perSecond(), svc.perSecond()/cli.perSecond(), cli.cpuMS()/svc.cpuMS())
	if rep.before != nil {
		fmt.Fprintf(&b, ", service/before throughput **%.2f**", svc.perSecond()/rep.before.perSecond())
	}
	b.WriteString(".\nPeak RSS of the CLI row is the largest single tesseract process; the service's is the sum of its processes' peaks.\n")
	if ctr := rep.container; ctr != nil {
		r := ctr.result
		fmt.Fprintf(&b, "\n### Container image\n\n| image | size MB | docker run to /readyz 200 | idle RSS MiB | images/s | p50 ms | p95 ms | CPU ms/image | peak RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| %s | %.1f | %d ms | %.0f | %.1f | %d | %d | %.0f | %.0f | %d |\n", ctr.image, float64(ctr.sizeBytes)/1e6,
			ctr.startup.Milliseconds(), float64(ctr.idleRSSKiB)/1024, r.perSecond(), r.pct(.5).Milliseconds(), r.pct(.95).Milliseconds(),
			r.cpuMS(), float64(r.PeakRSSKiB)/1024, r.Errors)
		fmt.Fprintf(&b, "\nContainer/native throughput (same run, same load, --cpus %d, read-only, no capabilities): **%.2f**.\n", rep.cores, r.perSecond()/svc.perSecond())
	}
	rep.renderModes(&b)
	if rep.jobs != nil {
		rep.jobs.render(&b)
	}
	if rep.auth != nil {
		rep.auth.render(&b)
	}
	if rep.tracing != nil {
		rep.tracing.render(&b)
	}
	if soak := rep.soak; len(soak) > 0 {
		b.WriteString("\n### Service memory under sustained load\n\n| requests served | RSS MiB (API + workers) | C heap in use MiB (workers) |\n|---:|---:|---:|\n")
		for _, s := range soak {
			fmt.Fprintf(&b, "| %d | %.1f | %.2f |\n", s.done, float64(s.rssKiB)/1024, s.cHeap/(1<<20))
		}
		// After the first step (warm-up): the range, and the trend of a least-squares line.
		warm := soak[min(1, len(soak)-1):]
		lo, hi := warm[0].rssKiB, warm[0].rssKiB
		var xs, ys []float64
		for _, s := range warm {
			lo, hi = min(lo, s.rssKiB), max(hi, s.rssKiB)
			xs, ys = append(xs, float64(s.done)), append(ys, float64(s.rssKiB)/1024)
		}
		first, last := warm[0], warm[len(warm)-1]
		fmt.Fprintf(&b, "\nFrom %d to %d requests: RSS between %.1f and %.1f MiB, trend %+.2f MiB per 1,000 requests "+
			"(least squares); C heap in use %.2f -> %.2f MiB.\n", first.done, last.done, float64(lo)/1024, float64(hi)/1024,
			1000*slope(xs, ys), first.cHeap/(1<<20), last.cHeap/(1<<20))
	}
	if rep.worst != nil {
		rep.worst.render(&b)
	}
	return b.String()
}

// renderModes writes the documents' sections (all that a -only run without -jobs measures).
func (rep report) renderModes(b *strings.Builder) {
	if rep.docs != nil {
		rep.docs.render(b)
	}
	if rep.searchable != nil {
		rep.searchable.render(b)
	}
	if rep.pages != nil {
		rep.pages.render(b)
	}
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	if d := n*sxx - sx*sx; d != 0 {
		return (n*sxy - sx*sy) / d
	}
	return 0
}
