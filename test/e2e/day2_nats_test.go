package e2e

// Day 2, scenario 2: a NATS cluster that loses a server. A Pulumi stack with 3 NATS servers
// (every stream, the jobs' and the key-value and object stores', at 3 replicas); minikube has one
// node, so the stack sets readocr:natsSpread=preferred (the default, required, would leave two
// servers Pending). During a batch of at least 200 jobs the jobs stream's leader's pod is
// deleted (SIGTERM: lame duck), and once it is back, another server is killed with SIGKILL (its
// process, from the node: the none driver's node is this host). Every job succeeds exactly
// once; the outage each client saw is logged.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const natsPods = "app.kubernetes.io/instance=readocr-nats"

// natsStream is what a server's monitoring endpoint says of a stream.
type natsStream struct {
	Name    string
	Cluster struct {
		Leader   string
		Replicas []struct {
			Name    string
			Current bool
		}
	}
	Config struct {
		Replicas int `json:"num_replicas"`
	}
}

// natsStreams asks one server (through the API server's pod proxy) for every stream.
func natsStreams(t *testing.T, ns, pod string) ([]natsStream, error) {
	t.Helper()
	out, err := exec.Command("kubectl", "get", "--raw",
		fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:8222/proxy/jsz?accounts=true&streams=true&config=true", ns, pod)).Output()
	if err != nil {
		return nil, err
	}
	var jsz struct {
		Accounts []struct {
			Name    string
			Streams []natsStream `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.Unmarshal(out, &jsz); err != nil {
		return nil, err
	}
	var all []natsStream
	for _, a := range jsz.Accounts {
		all = append(all, a.Streams...)
	}
	return all, nil
}

// jobsLeader is the server that leads the jobs stream, as the first server that answers says.
func jobsLeader(t *testing.T, ns string) (string, []natsStream) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		for i := range 3 {
			streams, err := natsStreams(t, ns, fmt.Sprintf("readocr-nats-%d", i))
			if err != nil {
				continue
			}
			for _, s := range streams {
				if s.Name == "READOCR_JOBS" && s.Cluster.Leader != "" {
					return s.Cluster.Leader, streams
				}
			}
		}
	}
	t.Fatal("no server names a leader of READOCR_JOBS")
	return "", nil
}

func podUID(t *testing.T, ns, pod string) string {
	t.Helper()
	out, _ := exec.Command("kubectl", "get", "pod", pod, "-n", ns, "-o", "jsonpath={.metadata.uid}").Output()
	return string(out)
}

// awaitServer waits for pod to be Ready again, as a new pod (uid changed) or a restarted
// container (restart count above restarts).
func awaitServer(t *testing.T, ns, pod, oldUID string, restarts int) time.Duration {
	t.Helper()
	began := time.Now()
	for deadline := time.Now().Add(4 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		out, _ := exec.Command("kubectl", "get", "pod", pod, "-n", ns, "-o",
			"jsonpath={.metadata.uid} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}").Output()
		f := strings.Fields(string(out))
		if len(f) == 3 && f[1] == "true" {
			n, _ := strconv.Atoi(f[2])
			if f[0] != oldUID || n > restarts {
				return time.Since(began)
			}
		}
	}
	t.Fatalf("%s not back: %s", pod, kubectl(t, "get", "pods", "-n", ns, "-o", "wide"))
	return 0
}

// killContainer sends SIGKILL to the main process of a pod's first container from the node
// (this host, with the none driver), found by containerd's task list: no goodbye, as in a
// crash or an OOM kill. The kubelet then restarts the container in the same pod.
func killContainer(t *testing.T, ns, pod string) {
	t.Helper()
	id := strings.TrimPrefix(kubectl(t, "get", "pod", pod, "-n", ns, "-o", "jsonpath={.status.containerStatuses[0].containerID}"), "containerd://")
	out, err := exec.Command("ctr", "-n", "k8s.io", "task", "ls").Output()
	if err != nil {
		t.Fatalf("ctr task ls (the none driver's node is this host): %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid, _ := strconv.Atoi(f[1])
			if pid <= 1 {
				break
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %d (%s): %v", pid, pod, err)
			}
			t.Logf("kill -9 %d: %s's main process", pid, pod)
			return
		}
	}
	t.Fatalf("no task for %s's container %s", pod, id)
}

// finishGaps is the longest time between two jobs finishing, from the workers' logs: what the
// workers, NATS's other clients, saw.
func finishGaps(lines []string) time.Duration {
	re := regexp.MustCompile(`"time":"([^"]+)".*"msg":"job finished"`)
	var times []time.Time
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			if ts, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
				times = append(times, ts)
			}
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	return gap
}

func TestDay2NATSServerLost(t *testing.T) {
	e := getDay2(t)
	if !e.pulumi {
		t.Skip("E2E_PULUMI is not set: the 3-server stack is a Pulumi stack")
	}
	ns := namespace(t, "readocr-natsha")
	work := t.TempDir()
	stackCfg := filepath.Join(work, "Pulumi.natsha.yaml")
	os.WriteFile(stackCfg, []byte(readFile(t, "Pulumi.minikube.yaml")), 0o644)
	t.Setenv("PULUMI_BACKEND_URL", "file://"+work)
	pulumi := func(args ...string) string {
		t.Helper()
		return run(t, "pulumi", append(args, "--stack", "natsha", "--non-interactive", "--config-file", stackCfg)...)
	}
	run(t, "pulumi", "stack", "init", "natsha", "--non-interactive")
	t.Cleanup(func() {
		exec.Command("pulumi", "destroy", "--yes", "--skip-preview", "--stack", "natsha", "--non-interactive", "--config-file", stackCfg).Run()
		exec.Command("pulumi", "stack", "rm", "natsha", "--yes", "--force", "--non-interactive").Run()
		os.Remove(filepath.Join(root(), "Pulumi.natsha.yaml"))
	})
	for k, v := range map[string]string{"namespace": ns, "nodePort": "30404", "natsReplicas": "3", "natsSpread": "preferred"} {
		pulumi("config", "set", "readocr:"+k, v)
	}
	began := time.Now()
	pulumi("up", "--yes", "--skip-preview", "--suppress-progress")
	kubectl(t, "rollout", "status", "statefulset/readocr-nats", "-n", ns, "--timeout=300s")
	waitReady(t, ns, 2, 3*time.Minute)
	t.Logf("a stack with 3 NATS servers up: %v", time.Since(began).Round(time.Second))
	url := serviceURL(t, ns)
	checkPages(t, url)

	// Every stream the service made, on three servers.
	submitJob(url, fmt.Sprintf("day2-warmup-%d", time.Now().UnixNano()), jobBody()) // the stores exist once a job is queued
	leader, streams := jobsLeader(t, ns)
	for _, s := range streams {
		t.Logf("stream %s: %d replicas, leader %s", s.Name, s.Config.Replicas, s.Cluster.Leader)
		if s.Config.Replicas != 3 {
			t.Errorf("stream %s has %d replicas, want 3", s.Name, s.Config.Replicas)
		}
	}
	if len(streams) < 3 {
		t.Errorf("%d streams, want the jobs stream, the records' and the data's stores", len(streams))
	}

	logs := followLogs(ns, readocrPods)
	pods := recordPods(ns, natsPods, time.Second)
	jobs := startJobClients(url, 3, 1500*time.Millisecond, 0)
	time.Sleep(10 * time.Second)

	uid := podUID(t, ns, leader)
	t.Logf("kubectl delete pod %s (the jobs stream's leader; lame duck on SIGTERM)", leader)
	kubectl(t, "delete", "pod", leader, "-n", ns, "--wait=false")
	t.Logf("%s back and ready after %v", leader, awaitServer(t, ns, leader, uid, 0).Round(time.Second))
	next, _ := jobsLeader(t, ns)
	victim := next
	if victim == leader {
		victim = fmt.Sprintf("readocr-nats-%d", (int(leader[len(leader)-1]-'0')+1)%3)
	}
	t.Logf("the jobs stream's leader is now %s; killing %s", next, victim)
	restarts, _ := strconv.Atoi(kubectl(t, "get", "pod", victim, "-n", ns, "-o", "jsonpath={.status.containerStatuses[0].restartCount}"))
	killContainer(t, ns, victim)
	t.Logf("%s restarted and ready after %v", victim, awaitServer(t, ns, victim, podUID(t, ns, victim), restarts).Round(time.Second))
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if ids, _, _ := jobs.jobIDs(); len(ids) >= 200 {
			break
		}
	}
	time.Sleep(5 * time.Second)
	jobs.finish()
	t.Log("POST /jobs clients (each retries its key until the API takes it):")
	jobs.report(t)
	ids, _, _ := jobs.jobIDs()
	if len(ids) < 200 {
		t.Errorf("%d jobs queued, want at least 200", len(ids))
	}
	checkJobs(t, url, jobs, logs, 6*time.Minute)
	t.Logf("workers: the longest time between two jobs finishing: %v", finishGaps(logs.finish()).Round(100*time.Millisecond))
	t.Logf("NATS pods over time:\n  %s", strings.Join(pods.finish(), "\n  "))
	leaderAfter, _ := jobsLeader(t, ns)
	t.Logf("after: the jobs stream's leader %s", leaderAfter)
}
