package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/readocr/readocr/service/internal/apikey"
	"github.com/readocr/readocr/service/internal/ratelimit"
)

// authReport is what API keys cost: per request on a route that does nothing else, the OCR
// throughput with keys and shared limits on, and what a guesser sees of a key's characters.
type authReport struct {
	lookup     time.Duration // in the process: hash and look up a key among 1,000
	probes     []probeRow    // GET /languages, one client, keep-alive
	rounds     int           // of /read_ocr under the service mode's load, alternately without and with keys
	off, keyed result        // the rounds added up
	spread     [2][2]float64 // the slowest and fastest round's images/s, without and with keys
	guessN     int
	guessHTTP  [2]time.Duration // median answer to a wrong key: only the prefix right, all but the last character right
	noiseHTTP  time.Duration    // between two halves of the same class
	guessLocal [2]time.Duration // the same for the lookup alone, in the process
	noiseLocal time.Duration
}

type probeRow struct {
	name     string
	p50, p95 time.Duration
}

// runAuth starts the service with a key file (a key without limits, a key with a rate and a
// page quota it never reaches: the shared bucket is read and written on every request) next to
// the one without keys (off), and measures.
func runAuth(log *slog.Logger, bin string, off target, images []page, n, conc int) (*authReport, error) {
	rep := &authReport{guessN: 10000}
	plain, pk, _ := apikey.New("plain", []apikey.Scope{apikey.ScopeAdmin}, ratelimit.Policy{})
	limited, lk, _ := apikey.New("limited", []apikey.Scope{apikey.ScopeAdmin}, ratelimit.Policy{Rate: 1e6, Burst: 1e6, Pages: 1e9})
	lines := []string{pk.Line(), lk.Line()}
	for i := range 998 { // a thousand keys in the file
		_, k, _ := apikey.New(fmt.Sprintf("team-%d", i), []apikey.Scope{apikey.ScopeOCR}, ratelimit.Policy{})
		lines = append(lines, k.Line())
	}
	dir, err := os.MkdirTemp("", "ocrbench-keys-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(file, []byte("keys:\n  "+strings.Join(lines, "\n  ")+"\n"), 0o600); err != nil {
		return nil, err
	}
	set, _ := apikey.Parse([]byte("keys:\n  " + strings.Join(lines, "\n  ") + "\n"))
	rep.lookup = timeLookups(set, plain, 100000)

	on, err := startNative(log, bin, "--api-keys", file)
	if err != nil {
		return nil, err
	}
	defer on.stop()

	log.Info("auth: the cost per request (GET /languages, one client)")
	rows, err := probeLatencies(off, on, plain, limited, 3000)
	if err != nil {
		return nil, err
	}
	rep.probes = rows

	log.Info("auth: a guessed key, 10,000 attempts of each kind")
	prefixOnly, allButLast := guesses(plain)
	rep.guessHTTP, rep.noiseHTTP, err = guessOverHTTP(on, prefixOnly, allButLast, rep.guessN)
	if err != nil {
		return nil, err
	}
	rep.guessLocal, rep.noiseLocal = guessLocally(set, prefixOnly, allButLast, rep.guessN)

	// The machine's load changes over minutes: rounds alternate, so that it falls on both.
	log.Info("auth: /read_ocr under load, alternately without keys and with keys and limits")
	on.key = limited
	rep.rounds = 4
	rep.spread = [2][2]float64{{1e9, 0}, {1e9, 0}}
	targets, totals := []target{off, on}, []*result{&rep.off, &rep.keyed}
	for round := range rep.rounds {
		for _, i := range [][]int{{0, 1}, {1, 0}}[round%2] {
			r := runLoad(targets[i], images, max(n/rep.rounds, 2*conc), conc)
			t := totals[i]
			t.Images, t.Wall, t.Errors = t.Images+r.Images, t.Wall+r.Wall, t.Errors+r.Errors
			t.Latencies = append(t.Latencies, r.Latencies...)
			rep.spread[i] = [2]float64{min(rep.spread[i][0], r.perSecond()), max(rep.spread[i][1], r.perSecond())}
		}
	}
	rep.off.Name, rep.keyed.Name = "keys off", "API keys and shared limits on (rate and page quota in JetStream KV)"
	return rep, nil
}

// guesses are two wrong keys: one with only the prefix right, one with every character right
// but the last.
func guesses(key string) (string, string) {
	wrong := []byte(key)
	for i := len(apikey.Prefix); i < len(wrong); i++ {
		wrong[i] = "AB"[i%2]
	}
	last := []byte(key)
	last[len(last)-1] ^= 1
	return string(wrong), string(last)
}

func timeLookups(set *apikey.Set, key string, n int) time.Duration {
	began := time.Now()
	for range n {
		set.Lookup(key)
	}
	return time.Since(began) / time.Duration(n)
}

// get sends GET path with key and returns its latency.
func get(client *http.Client, base, path, key string) (time.Duration, int, error) {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(began), resp.StatusCode, nil
}

// probeLatencies measures GET /languages without keys, with a key, and with a limited key,
// in interleaved rounds so that a change of the machine's load falls on all three.
func probeLatencies(off, on target, plain, limited string, n int) ([]probeRow, error) {
	client := &http.Client{}
	cases := []struct {
		name, base, key string
	}{
		{"keys off", off.base, ""},
		{"key checked (SHA-256, lookup among 1,000)", on.base, plain},
		{"key checked, rate and page quota in JetStream KV", on.base, limited},
	}
	lat := make([][]time.Duration, len(cases))
	for round := 0; round < n/100; round++ {
		for i, c := range cases {
			for range 100 {
				d, status, err := get(client, c.base, "/languages", c.key)
				if err != nil || status != 200 {
					return nil, fmt.Errorf("%s: status %d, %v", c.name, status, err)
				}
				lat[i] = append(lat[i], d)
			}
		}
	}
	var rows []probeRow
	for i, c := range cases {
		rows = append(rows, probeRow{c.name, percentile(lat[i], .5), percentile(lat[i], .95)})
	}
	return rows, nil
}

// guessOverHTTP sends n wrong keys of each kind, interleaved in rounds of 100, and returns the
// median answer of each; the noise is the difference between the medians of two halves of the
// same kind (even and odd rounds), the precision of the comparison.
func guessOverHTTP(t target, a, b string, n int) ([2]time.Duration, time.Duration, error) {
	client := &http.Client{}
	var lat [2][2][]time.Duration // [kind][half]
	for round := 0; round < n/100; round++ {
		for kind, key := range []string{a, b} {
			for range 100 {
				d, status, err := get(client, t.base, "/languages", key)
				if err != nil || status != 401 {
					return [2]time.Duration{}, 0, fmt.Errorf("a wrong key: status %d, %v", status, err)
				}
				lat[kind][round%2] = append(lat[kind][round%2], d)
			}
		}
	}
	return medians(lat)
}

// guessLocally is the same for the lookup alone, timed in batches of 100 (a single lookup is
// shorter than the clock's resolution).
func guessLocally(set *apikey.Set, a, b string, n int) ([2]time.Duration, time.Duration) {
	var lat [2][2][]time.Duration
	for round := 0; round < n/100; round++ {
		for kind, key := range []string{a, b} {
			began := time.Now()
			for range 100 {
				set.Lookup(key)
			}
			lat[kind][round%2] = append(lat[kind][round%2], time.Since(began)/100)
		}
	}
	m, noise, _ := medians(lat)
	return m, noise
}

func medians(lat [2][2][]time.Duration) ([2]time.Duration, time.Duration, error) {
	var m [2]time.Duration
	var noise time.Duration
	for kind := range 2 {
		m[kind] = percentile(append(slices.Clone(lat[kind][0]), lat[kind][1]...), .5)
		noise = max(noise, absDuration(percentile(lat[kind][0], .5)-percentile(lat[kind][1], .5)))
	}
	return m, noise, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func (a *authReport) render(b *strings.Builder) {
	b.WriteString("\n### API keys\n\n")
	fmt.Fprintf(b, "Authentication in the process (SHA-256 of the key, lookup among 1,000 keys): **%.2f µs** a request.\n\n", us(a.lookup))
	b.WriteString("| GET /languages, one client, keep-alive | p50 µs | p95 µs | p50 over keys off µs |\n|---|---:|---:|---:|\n")
	for _, r := range a.probes {
		fmt.Fprintf(b, "| %s | %.0f | %.0f | %+.0f |\n", r.name, us(r.p50), us(r.p95), us(r.p50-a.probes[0].p50))
	}
	fmt.Fprintf(b, "\n| /read_ocr, the service mode's load, %d alternating rounds | images/s | slowest-fastest round | p50 ms | p95 ms | errors |\n|---|---:|---:|---:|---:|---:|\n", a.rounds)
	for i, r := range []result{a.off, a.keyed} {
		fmt.Fprintf(b, "| %s | %.2f | %.2f-%.2f | %d | %d | %d |\n", r.Name, r.perSecond(), a.spread[i][0], a.spread[i][1],
			r.pct(.5).Milliseconds(), r.pct(.95).Milliseconds(), r.Errors)
	}
	fmt.Fprintf(b, "\nKeys and limits on / off throughput **%.3f**; the rounds of one setting spread over %.0f %% of its mean (the noise).\n",
		a.keyed.perSecond()/a.off.perSecond(), 100*(a.spread[0][1]-a.spread[0][0])/a.off.perSecond())
	fmt.Fprintf(b, "\nA guessed key, %d wrong keys of each kind (401), interleaved: median answer with only the prefix right "+
		"**%.1f µs**, with all but the last character right **%.1f µs**: a difference of %+.1f µs against a noise of %.1f µs "+
		"(two halves of the same kind). The lookup alone: %.0f ns and %.0f ns (noise %.0f ns).\n",
		a.guessN, us(a.guessHTTP[0]), us(a.guessHTTP[1]), us(a.guessHTTP[1]-a.guessHTTP[0]), us(a.noiseHTTP),
		float64(a.guessLocal[0].Nanoseconds()), float64(a.guessLocal[1].Nanoseconds()), float64(a.noiseLocal.Nanoseconds()))
}
