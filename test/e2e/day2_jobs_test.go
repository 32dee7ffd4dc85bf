package e2e

// Helpers of the day-2 scenarios (day2_*_test.go): jobs queued by clients that retry with their
// Idempotency-Key until the API takes them (so a job is never lost by the client, nor made
// twice), each client's outage measured; every job's end checked; worker logs followed as
// pods come and go, to count how often each job finished.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// day2Env: the images of the day-2 scenarios (hack/e2e.sh tags a next one of each).
type day2Env struct {
	env
	nats, nextNATS string
}

func getDay2(t *testing.T) day2Env {
	if os.Getenv("E2E_DAY2") != "1" {
		t.Skip("the day-2 scenarios run with E2E_DAY2=1 (hack/e2e.sh)")
	}
	e := day2Env{env: getEnv(t), nats: os.Getenv("E2E_NATS_IMAGE"), nextNATS: os.Getenv("E2E_NEXT_NATS_IMAGE")}
	if e.nextImage == "" || e.nats == "" || e.nextNATS == "" {
		t.Skip("E2E_NEXT_IMAGE, E2E_NATS_IMAGE and E2E_NEXT_NATS_IMAGE are set by hack/e2e.sh")
	}
	return e
}

// addonBuilt skips the test unless hack/offline/addons/<name>/build.sh has built the add-on
// (the CI's prebuild does, in the background: a build started here would compete with it).
func addonBuilt(t *testing.T, name string) {
	t.Helper()
	home, _ := os.UserHomeDir()
	if m, _ := filepath.Glob(filepath.Join(home, ".cache", "readocr", name, "."+name+"-v*")); len(m) == 0 {
		t.Skipf("%s is not built yet (hack/offline/addons/%s/build.sh)", name, name)
	}
}

// jobPage is what each job reads, and a word its text must have.
var jobPage, jobWord = "tjs_simple.pbm", "Tesseract.js"

func jobBody() []byte {
	img := testimages.Must(jobPage)
	return []byte(`{"image":"` + base64.StdEncoding.EncodeToString(img.Bytes) + `","lang":"eng"}`)
}

// submitJob posts one job with its key: the job's id, or the status and error.
func submitJob(base, key string, body []byte) (string, int, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", `"`+key+`"`)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var j job
	json.NewDecoder(resp.Body).Decode(&j)
	if resp.StatusCode != http.StatusAccepted || j.ID == "" {
		return "", resp.StatusCode, fmt.Errorf("POST /jobs: %d", resp.StatusCode)
	}
	return j.ID, resp.StatusCode, nil
}

// outage is one client's time without an answer: from its first failure after a success to
// its next success.
type outage struct {
	client     int
	start, end time.Time
	failures   int
	last       string
}

// jobClients queue jobs, each client one after the other at its pace, until finish.
type jobClients struct {
	base string
	body []byte
	mu   sync.Mutex
	ids  map[string]map[string]bool // key -> the job ids the API answered for it
	out  []outage
	sent atomic.Int64 // POSTs, retries included
	stop chan struct{}
	wg   sync.WaitGroup
}

func startJobClients(base string, clients int, every time.Duration, max int) *jobClients {
	c := &jobClients{base: base, body: jobBody(), ids: map[string]map[string]bool{}, stop: make(chan struct{})}
	var queued atomic.Int64
	prefix := fmt.Sprintf("day2-%d", time.Now().UnixNano())
	for n := range clients {
		c.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-c.stop:
					return
				default:
				}
				if max > 0 && queued.Add(1) > int64(max) {
					return
				}
				c.queue(n, fmt.Sprintf("%s-%d-%d", prefix, n, i))
				time.Sleep(every)
			}
		})
	}
	return c
}

// queue retries one key until the API takes it (or the clients stop and 2 minutes have passed).
func (c *jobClients) queue(client int, key string) {
	var down *outage
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		c.sent.Add(1)
		id, status, err := submitJob(c.base, key, c.body)
		c.mu.Lock()
		if err == nil {
			if c.ids[key] == nil {
				c.ids[key] = map[string]bool{}
			}
			c.ids[key][id] = true
			if down != nil {
				down.end = time.Now()
				c.out = append(c.out, *down)
			}
			c.mu.Unlock()
			return
		}
		if down == nil {
			down = &outage{client: client, start: time.Now()}
		}
		down.failures++
		down.last = fmt.Sprintf("%d %v", status, err)
		c.mu.Unlock()
		if time.Now().After(deadline) {
			c.mu.Lock()
			down.end = time.Now()
			c.out = append(c.out, *down)
			c.ids[key] = map[string]bool{} // given up: counted as lost
			c.mu.Unlock()
			return
		}
	}
}

func (c *jobClients) finish() { close(c.stop); c.wg.Wait() }

// report logs each client's outages; it returns the longest.
func (c *jobClients) report(t *testing.T) time.Duration {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var longest time.Duration
	for _, o := range c.out {
		d := o.end.Sub(o.start)
		longest = max(longest, d)
		t.Logf("  client %d: POST /jobs unanswered %s to %s (%v, %d failed tries, last: %s)", o.client,
			o.start.Format("15:04:05.0"), o.end.Format("15:04:05.0"), d.Round(100*time.Millisecond), o.failures, o.last)
	}
	t.Logf("  %d jobs queued in %d POSTs; %d outages seen by the clients, the longest %v", len(c.ids), c.sent.Load(), len(c.out), longest.Round(100*time.Millisecond))
	return longest
}

// jobIDs is each key's job; keys answered with more than one job are duplicates; keys given up
// are lost.
func (c *jobClients) jobIDs() (ids []string, dup, lost []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, set := range c.ids {
		switch len(set) {
		case 0:
			lost = append(lost, key)
		case 1:
		default:
			dup = append(dup, key)
		}
		for id := range set {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, dup, lost
}

// jobEnd is what became of the jobs.
type jobEnd struct {
	succeeded, failed, unfinished int
	attempts                      map[int]int // attempts -> jobs
	badText                       []string
}

// settleJobs waits for every job to end and reads each result.
func settleJobs(t *testing.T, base string, ids []string, within time.Duration) jobEnd {
	t.Helper()
	end := jobEnd{attempts: map[int]int{}}
	deadline := time.Now().Add(within)
	for _, id := range ids {
		var j job
		for {
			j = getJob(t, base, id)
			if j.Status == "succeeded" || j.Status == "failed" || j.Status == "canceled" || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		end.attempts[j.Attempts]++
		switch j.Status {
		case "succeeded":
			end.succeeded++
			if text := jobResult(base, id); !strings.Contains(text, jobWord) {
				end.badText = append(end.badText, fmt.Sprintf("%s: %.80q", id, text))
			}
		case "failed", "canceled":
			end.failed++
			t.Logf("job %s %s: %+v", id, j.Status, j.Error)
		default:
			end.unfinished++
			t.Logf("job %s still %s", id, j.Status)
		}
	}
	return end
}

func jobResult(base, id string) string {
	for range 5 {
		resp, err := http.Get(base + "/jobs/" + id + "/result")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
		}
		time.Sleep(time.Second)
	}
	return ""
}

// podLogs follows the logs of every pod of a selector as the pods appear (a pod deleted
// during a rollout has logged what it did by then).
type podLogs struct {
	once  sync.Once
	mu    sync.Mutex
	lines []string
	cmds  map[string]*exec.Cmd
	stop  chan struct{}
	wg    sync.WaitGroup
}

func followLogs(ns, selector string) *podLogs {
	l := &podLogs{cmds: map[string]*exec.Cmd{}, stop: make(chan struct{})}
	l.wg.Go(func() {
		for {
			// Running pods only: kubectl logs -f of a pod still being created fails at once.
			out, _ := exec.Command("kubectl", "get", "pods", "-n", ns, "-l", selector, "--field-selector=status.phase=Running",
				"-o", "jsonpath={.items[*].metadata.name}").Output()
			for _, pod := range strings.Fields(string(out)) {
				l.mu.Lock()
				if l.cmds[pod] == nil {
					cmd := exec.Command("kubectl", "logs", "-f", "-n", ns, pod, "--tail=-1")
					stdout, _ := cmd.StdoutPipe()
					if cmd.Start() == nil {
						l.cmds[pod] = cmd
						l.wg.Go(func() {
							sc := bufio.NewScanner(stdout)
							sc.Buffer(make([]byte, 1<<20), 1<<20)
							for sc.Scan() {
								l.mu.Lock()
								l.lines = append(l.lines, pod+" "+sc.Text())
								l.mu.Unlock()
							}
							cmd.Wait()
						})
					}
				}
				l.mu.Unlock()
			}
			select {
			case <-l.stop:
				return
			case <-time.After(time.Second):
			}
		}
	})
	return l
}

// finish stops following (after a moment for the last lines) and returns the lines.
func (l *podLogs) finish() []string {
	l.once.Do(func() {
		time.Sleep(2 * time.Second)
		close(l.stop)
		l.mu.Lock()
		for _, cmd := range l.cmds {
			if cmd.Process != nil {
				cmd.Process.Kill() // our own kubectl logs -f
			}
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return l.lines
}

var finishedLine = regexp.MustCompile(`"msg":"job finished".*"job":"([^"]+)"|"job":"([^"]+)".*"msg":"job finished"`)

// finishedTwice: the jobs that a worker finished more than once (each finish is logged once).
func finishedTwice(lines []string, ids []string) (twice []string, seen int) {
	count := map[string]int{}
	for _, line := range lines {
		if m := finishedLine.FindStringSubmatch(line); m != nil {
			count[m[1]+m[2]]++
		}
	}
	for _, id := range ids {
		if count[id] > 0 {
			seen++
		}
		if count[id] > 1 {
			twice = append(twice, fmt.Sprintf("%s (%d times)", id, count[id]))
		}
	}
	return twice, seen
}

// checkJobs settles the clients' jobs and fails on any lost, duplicated, failed or wrong job,
// or one finished twice; it logs the figures.
func checkJobs(t *testing.T, base string, c *jobClients, logs *podLogs, within time.Duration) {
	t.Helper()
	ids, dup, lost := c.jobIDs()
	end := settleJobs(t, base, ids, within)
	twice, logged := finishedTwice(logs.finish(), ids)
	t.Logf("jobs: %d queued, %d succeeded, %d failed, %d unfinished, %d lost by the API, %d keys with 2 jobs, %d finished twice; attempts %v; %d finishes seen in the workers' logs",
		len(ids), end.succeeded, end.failed, end.unfinished, len(lost), len(dup), len(twice), end.attempts, logged)
	if len(ids) == 0 || end.succeeded != len(ids) || len(lost) > 0 || len(dup) > 0 || len(twice) > 0 || len(end.badText) > 0 {
		t.Errorf("not every job succeeded exactly once: lost %v, duplicated %v, finished twice %v, wrong text %v", lost, dup, twice, end.badText)
	}
	if logged < len(ids)*9/10 {
		t.Errorf("the workers' logs show %d of %d jobs finishing: the exactly-once count saw too little", logged, len(ids))
	}
}

// podsOverTime records a selector's pods (name, phase, ready) every period until finish.
type podsOverTime struct {
	mu    sync.Mutex
	lines []string
	stop  chan struct{}
	done  chan struct{}
}

func recordPods(ns, selector string, period time.Duration) *podsOverTime {
	p := &podsOverTime{stop: make(chan struct{}), done: make(chan struct{})}
	began := time.Now()
	go func() {
		defer close(p.done)
		last := ""
		for {
			out, _ := exec.Command("kubectl", "get", "pods", "-n", ns, "-l", selector, "--no-headers",
				"-o", "custom-columns=N:.metadata.name,S:.status.phase,R:.status.containerStatuses[0].ready,C:.status.containerStatuses[0].restartCount").Output()
			now := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " |")), " ")
			if now != last {
				p.mu.Lock()
				p.lines = append(p.lines, fmt.Sprintf("+%5.1fs %s", time.Since(began).Seconds(), now))
				p.mu.Unlock()
				last = now
			}
			select {
			case <-p.stop:
				return
			case <-time.After(period):
			}
		}
	}()
	return p
}

func (p *podsOverTime) finish() []string { close(p.stop); <-p.done; return p.lines }

// manifestsAt writes the top-level manifests of a commit (rev "" is the work tree) to a
// directory, each image named in from replaced by its value.
func manifestsAt(t *testing.T, rev string, images map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	if rev == "" {
		m, _ := filepath.Glob(filepath.Join(root(), "manifests", "*.yaml"))
		for _, f := range m {
			files = append(files, "manifests/"+filepath.Base(f))
		}
	} else {
		files = strings.Fields(run(t, "git", "ls-tree", "--name-only", rev, "manifests/"))
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ".yaml") {
			continue
		}
		var text string
		if rev == "" {
			text = readFile(t, f)
		} else {
			text = run(t, "git", "show", rev+":"+f) + "\n"
		}
		for from, to := range images {
			text = strings.ReplaceAll(text, "image: "+from+"\n", "image: "+to+"\n")
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(text), 0o644)
	}
	return dir
}

// images is each pod's containers' images, "pod=image", sorted.
func images(t *testing.T, ns string) string {
	t.Helper()
	out := kubectl(t, "get", "pods", "-n", ns, "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image}{"\n"}{end}`)
	lines := strings.Fields(out)
	sort.Strings(lines)
	return strings.Join(lines, " ")
}
