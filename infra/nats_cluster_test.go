package main

import (
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/servicebin"
	"github.com/readocr/readocr/internal/testsupport/syncbuffer"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// A NATS cluster that loses a server, on processes (test/e2e's TestDay2NATSServerLost is the
// same on minikube): production's rendered nats.conf (3 servers and their routes; only ports and
// paths changed) on three nats-server processes, readocr's API and a worker (the built binary,
// --nats-replicas 3, as the production ConfigMap says) connected to all three. During at least
// 200 jobs, queued by clients that retry with their Idempotency-Key, the jobs stream's leader is
// stopped as the kubelet stops a pod (the pre-stop lame duck, SIGTERM) and started again on its
// store, then another server is killed with SIGKILL and started again. Every job must succeed
// exactly once; each client's outage is logged. It builds readocr (cgo, libtesseract) and runs
// for minutes: READOCR_NATS_CLUSTER=1 runs it.
func TestNATSClusterLosesAServer(t *testing.T) {
	if os.Getenv("READOCR_NATS_CLUSTER") != "1" {
		t.Skip("READOCR_NATS_CLUSTER=1 runs it (builds readocr, minutes)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("building nats-server: %v\n%s", err, out)
	}
	readocr, err := servicebin.Build(dir)
	if err != nil {
		t.Fatalf("building readocr: %v", err)
	}
	// Production's NATS demands the user of the Secret Pulumi generates: the servers read it from
	// their environment, as the pods do, and so does readocr (OCR_NATS_USER, OCR_NATS_PASSWORD).
	rec := renderStack(t, "production", map[string]string{"readocr:secretSeed": "a-test-seed-of-enough-characters"})
	creds := unsecret(rec.get(t, natsSecret)["stringData"]).(map[string]any)
	t.Setenv("OCR_NATS_USER", fmt.Sprint(creds["OCR_NATS_USER"]))
	t.Setenv("OCR_NATS_PASSWORD", fmt.Sprint(unsecret(creds["OCR_NATS_PASSWORD"])))
	c := newNATSCluster(t, bin, withoutNATSTLS(natsConf(t, rec)), dir)
	for i := range 3 {
		c.start(t, i)
	}
	for i := range 3 {
		if code := waitHTTP(t, c.monitorURL(i)+"/healthz", 90*time.Second); code != http.StatusOK {
			t.Fatalf("server %d: /healthz %d\n%s", i, code, c.logs[i].String())
		}
	}
	args := []string{"--jobs", "--nats-url", c.urls(), "--nats-replicas", "3"}
	api, err := servicebin.Start(readocr, filepath.Join(dir, "api"), append(args, "--role", "api")...)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Stop()
	worker, err := servicebin.Start(readocr, filepath.Join(dir, "worker"), append(args, "--role", "worker")...)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Stop()

	q := startQueueing(api.URL, 3, time.Second)
	time.Sleep(5 * time.Second)
	leader := c.jobsLeader(t)
	t.Logf("the jobs stream's leader: readocr-nats-%d; stopped as a pod is deleted (pre-stop lame duck, SIGTERM)", leader)
	began := time.Now()
	c.stopAsKubelet(t, leader)
	t.Logf("readocr-nats-%d exited after %v; started again on its store", leader, time.Since(began).Round(100*time.Millisecond))
	c.start(t, leader)
	waitHTTP(t, c.monitorURL(leader)+"/healthz", 2*time.Minute)
	next := c.jobsLeader(t)
	victim := next
	if victim == leader {
		victim = (leader + 1) % 3
	}
	t.Logf("leader now readocr-nats-%d; kill -9 readocr-nats-%d", next, victim)
	c.procs[victim].Process.Signal(syscall.SIGKILL)
	<-c.exited[victim]
	time.Sleep(2 * time.Second) // a restarted container's delay
	c.start(t, victim)
	waitHTTP(t, c.monitorURL(victim)+"/healthz", 2*time.Minute)
	for deadline := time.Now().Add(3 * time.Minute); q.count() < 200 && time.Now().Before(deadline); time.Sleep(time.Second) {
	}
	q.finish()
	for _, line := range q.outages() {
		t.Log(line)
	}
	ids, dup, lost := q.result()
	finished := regexp.MustCompile(`"msg":"job finished".*?"job":"([^"]+)"`)
	statuses := map[string]int{}
	settle := time.Now().Add(4 * time.Minute) // for all the jobs together
	for _, id := range ids {
		st, raw := awaitDone(api.URL, id, settle)
		statuses[st]++
		if st != "succeeded" {
			t.Logf("job %s: %s", id, raw)
			for _, l := range strings.Split(worker.Log.String()+api.Log.String(), "\n") {
				if strings.Contains(l, id) {
					t.Logf("  %.300s", l)
				}
			}
		}
	}
	count := map[string]int{}
	for _, m := range finished.FindAllStringSubmatch(worker.Log.String(), -1) {
		count[m[1]]++
	}
	var twice, unseen int
	for _, id := range ids {
		if count[id] > 1 {
			twice++
		}
		if count[id] == 0 {
			unseen++
		}
	}
	t.Logf("jobs: %d queued in %d POSTs, %v, %d lost by the API, %d keys with 2 jobs; the worker finished %d twice, %d never",
		len(ids), q.sent, statuses, len(lost), len(dup), twice, unseen)
	if len(ids) < 200 || statuses["succeeded"] != len(ids) || len(lost)+len(dup)+twice+unseen > 0 {
		t.Errorf("not every job succeeded exactly once")
	}
}

// natsCluster is three nats-server processes on loopback, each restartable on its store.
type natsCluster struct {
	bin, conf, dir         string
	client, route, monitor [3]int
	procs                  [3]*exec.Cmd
	exited                 [3]chan error
	logs                   [3]*syncbuffer.Buffer
}

func newNATSCluster(t *testing.T, bin, conf, dir string) *natsCluster {
	c := &natsCluster{bin: bin, conf: conf, dir: dir}
	for i := range 3 {
		c.client[i], c.route[i], c.monitor[i] = freePort(t), freePort(t), freePort(t)
		c.logs[i] = &syncbuffer.Buffer{}
	}
	return c
}

func (c *natsCluster) monitorURL(i int) string {
	return fmt.Sprintf("http://127.0.0.1:%d", c.monitor[i])
}

func (c *natsCluster) urls() string {
	var u []string
	for i := range 3 {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", c.client[i]))
	}
	return strings.Join(u, ",")
}

// start runs server i on the rendered configuration, its routes and ports on loopback.
func (c *natsCluster) start(t *testing.T, i int) {
	t.Helper()
	sdir := filepath.Join(c.dir, fmt.Sprint(i))
	os.MkdirAll(filepath.Join(sdir, "run"), 0o755)
	pairs := []string{"/data", filepath.Join(sdir, "data"), natsPidDir, filepath.Join(sdir, "run"),
		fmt.Sprintf("port: %d\n", natsClientPort), fmt.Sprintf("port: %d\n", c.client[i]),
		fmt.Sprintf("http_port: %d", natsMonitor), fmt.Sprintf("http_port: %d", c.monitor[i]),
		fmt.Sprintf("  port: %d", natsRoutePort), fmt.Sprintf("  port: %d", c.route[i])}
	for j := range 3 {
		pairs = append(pairs, fmt.Sprintf("%s-%d.%s:%d", natsName, j, natsHeadless, natsRoutePort), fmt.Sprintf("127.0.0.1:%d", c.route[j]))
	}
	conf := strings.NewReplacer(pairs...).Replace(c.conf)
	file := filepath.Join(sdir, "nats.conf")
	os.WriteFile(file, []byte(conf), 0o644)
	cmd := exec.Command(c.bin, "--config", file)
	cmd.Env = append(os.Environ(), fmt.Sprintf("POD_NAME=%s-%d", natsName, i))
	cmd.Stdout, cmd.Stderr = c.logs[i], c.logs[i]
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.procs[i], c.exited[i] = cmd, make(chan error, 1)
	go func() { c.exited[i] <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
}

// stopAsKubelet does what the kubelet does on a pod's deletion: the pre-stop hook (lame duck
// through the pid file), then SIGTERM, and waits for the exit within the grace period.
func (c *natsCluster) stopAsKubelet(t *testing.T, i int) {
	t.Helper()
	pid := filepath.Join(c.dir, fmt.Sprint(i), "run", "nats.pid")
	if out, err := exec.Command(c.bin, "--signal", "ldm="+pid).CombinedOutput(); err != nil {
		t.Fatalf("pre-stop: %v\n%s", err, out)
	}
	c.procs[i].Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited[i]:
	case <-time.After(natsGraceSeconds * time.Second):
		t.Fatalf("server %d still running after the grace period", i)
	}
}

// jobsLeader is the server leading READOCR_JOBS, as the first server that answers says.
func (c *natsCluster) jobsLeader(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		for i := range 3 {
			var jsz struct {
				Accounts []struct {
					Streams []struct {
						Name    string
						Cluster struct{ Leader string }
					} `json:"stream_detail"`
				} `json:"account_details"`
			}
			resp, err := http.Get(c.monitorURL(i) + "/jsz?accounts=true&streams=true")
			if err != nil {
				continue
			}
			json.NewDecoder(resp.Body).Decode(&jsz)
			resp.Body.Close()
			for _, a := range jsz.Accounts {
				for _, s := range a.Streams {
					var n int
					if s.Name == "READOCR_JOBS" && s.Cluster.Leader != "" {
						if _, err := fmt.Sscanf(s.Cluster.Leader, natsName+"-%d", &n); err == nil {
							return n
						}
					}
				}
			}
		}
	}
	t.Fatal("no leader of READOCR_JOBS")
	return 0
}

// queueing: clients that queue jobs, each key retried until the API takes it.
type queueing struct {
	mu   sync.Mutex
	ids  map[string]map[string]bool
	out  []string
	sent int
	stop chan struct{}
	wg   sync.WaitGroup
}

func startQueueing(base string, clients int, every time.Duration) *queueing {
	img := testimages.Must("tjs_simple.pbm")
	body := []byte(`{"image":"` + base64.StdEncoding.EncodeToString(img.Bytes) + `","lang":"eng"}`)
	q := &queueing{ids: map[string]map[string]bool{}, stop: make(chan struct{})}
	prefix := fmt.Sprintf("cluster-%d", time.Now().UnixNano())
	for n := range clients {
		q.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-q.stop:
					return
				case <-time.After(every):
				}
				key := fmt.Sprintf("%s-%d-%d", prefix, n, i)
				var down time.Time
				for tries := 0; ; tries++ {
					id, err := postJob(base, key, body)
					q.mu.Lock()
					q.sent++
					if err == nil {
						if q.ids[key] == nil {
							q.ids[key] = map[string]bool{}
						}
						q.ids[key][id] = true
						if !down.IsZero() {
							q.out = append(q.out, fmt.Sprintf("client %d: POST /jobs unanswered %s-%s (%v, %d tries, then 202)", n,
								down.Format("15:04:05.0"), time.Now().Format("15:04:05.0"), time.Since(down).Round(100*time.Millisecond), tries))
						}
						q.mu.Unlock()
						break
					}
					if down.IsZero() {
						down = time.Now()
					}
					if time.Since(down) > 2*time.Minute {
						q.ids[key] = map[string]bool{}
						q.mu.Unlock()
						break
					}
					q.mu.Unlock()
					time.Sleep(250 * time.Millisecond)
				}
			}
		})
	}
	return q
}

func postJob(base, key string, body []byte) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", `"`+key+`"`)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var j struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&j)
	if resp.StatusCode != http.StatusAccepted || j.ID == "" {
		return "", fmt.Errorf("%d", resp.StatusCode)
	}
	return j.ID, nil
}

func (q *queueing) count() int { q.mu.Lock(); defer q.mu.Unlock(); return len(q.ids) }
func (q *queueing) finish()    { close(q.stop); q.wg.Wait() }
func (q *queueing) outages() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.out) == 0 {
		return []string{"no client saw POST /jobs fail"}
	}
	return q.out
}

func (q *queueing) result() (ids, dup, lost []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for key, set := range q.ids {
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
	return ids, dup, lost
}

// awaitDone polls a job until it ends or the deadline: its status and its last answer.
func awaitDone(base, id string, deadline time.Time) (string, string) {
	var j struct{ Status string }
	var raw []byte
	for {
		if resp, err := http.Get(base + "/jobs/" + id); err == nil {
			raw, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			json.Unmarshal(raw, &j)
		}
		if j.Status == "succeeded" || j.Status == "failed" || j.Status == "canceled" || time.Now().After(deadline) {
			return j.Status, string(raw)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
