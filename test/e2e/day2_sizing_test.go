package e2e

// Day 2, scenario 5: sizing on the node itself. The requests of what the node really runs
// (kube-system, as measured) plus every pod readocr can run at once (manifests/: each
// Deployment at its autoscaler's maximum plus a rolling update's extra pod, the NATS servers)
// against the e2e node's allocatable resources and against a default minikube (2 CPUs; 3 GB, or
// 4 GB as the README asks; 512 Mi set aside as infra/sizing_test.go does). Then the scheduler
// shows it: both autoscalers pinned at their maximum and a rollout of the API, with no pod left
// Pending.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// infra/sizing_test.go's control plane and metrics-server (kubeadm v1.33's requests): what it
// assumes the node runs before readocr.
const (
	assumedSystemMilliCPU = 250 + 200 + 100 + 100 + 100 + 100
	assumedSystemMemory   = (100 + 70 + 200) << 20
	systemMemory          = 512 << 20 // infra/sizing_test.go's allowance for the kubelet, runtime, kernel
)

type requests struct{ milliCPU, memory int64 }

// add counts n times a CPU and memory quantity (the forms manifests and nodes use: 125m, 2,
// 0.5; 256Mi, 1Gi, 24684088Ki, 100M, bytes).
func (r *requests) add(n int64, cpu, mem string) {
	if m, ok := strings.CutSuffix(cpu, "m"); ok {
		v, _ := strconv.ParseInt(m, 10, 64)
		r.milliCPU += n * v
	} else if cpu != "" {
		v, _ := strconv.ParseFloat(cpu, 64)
		r.milliCPU += n * int64(v*1000)
	}
	if mem == "" {
		return
	}
	unit := int64(1)
	for suffix, u := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1e3, "M": 1e6, "G": 1e9} {
		if v, ok := strings.CutSuffix(mem, suffix); ok {
			mem, unit = v, u
			break
		}
	}
	v, _ := strconv.ParseInt(mem, 10, 64)
	r.memory += n * v * unit
}

func (r requests) String() string { return fmt.Sprintf("%dm CPU, %d Mi", r.milliCPU, r.memory>>20) }

// manifestObject is the part of a Deployment, StatefulSet or autoscaler this test reads.
type manifestObject struct {
	Kind     string
	Metadata struct{ Name string }
	Spec     struct {
		Replicas       *int64
		MaxReplicas    int64                 `yaml:"maxReplicas"`
		ScaleTargetRef struct{ Name string } `yaml:"scaleTargetRef"`
		Strategy       struct {
			RollingUpdate struct {
				MaxSurge any `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		}
		Template struct {
			Spec struct {
				Containers []struct {
					Name      string
					Resources struct{ Requests map[string]string }
				}
				InitContainers []struct{} `yaml:"initContainers"`
			}
		}
	}
}

// readocrAtMost adds up manifests/: each Deployment at its autoscaler's maximum and a surge
// pod, each StatefulSet at its replicas.
func readocrAtMost(t *testing.T) (requests, []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root(), "manifests", "*.yaml"))
	var objs []manifestObject
	maxOf := map[string]int64{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var o manifestObject
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if o.Kind == "HorizontalPodAutoscaler" {
			maxOf[o.Spec.ScaleTargetRef.Name] = o.Spec.MaxReplicas
		}
		objs = append(objs, o)
	}
	var total requests
	var lines []string
	for _, o := range objs {
		var n int64
		switch o.Kind {
		case "Deployment":
			surge := int64(1)
			if s, ok := o.Spec.Strategy.RollingUpdate.MaxSurge.(int); ok {
				surge = int64(s)
			}
			n = maxOf[o.Metadata.Name] + surge
		case "StatefulSet":
			n = 1
			if o.Spec.Replicas != nil {
				n = *o.Spec.Replicas
			}
		default:
			continue
		}
		var pod requests
		for _, c := range o.Spec.Template.Spec.Containers {
			pod.add(1, c.Resources.Requests["cpu"], c.Resources.Requests["memory"])
		}
		total.milliCPU += n * pod.milliCPU
		total.memory += n * pod.memory
		lines = append(lines, fmt.Sprintf("%s %s: %d pods x %s", o.Kind, o.Metadata.Name, n, pod))
	}
	return total, lines
}

// running adds up the requests of the pods in a namespace as the API server has them.
func running(t *testing.T, ns string) (requests, []string) {
	t.Helper()
	var pods struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct {
				Containers []struct {
					Resources struct{ Requests map[string]string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(kubectl(t, "get", "pods", "-n", ns, "-o", "json")), &pods); err != nil {
		t.Fatal(err)
	}
	var total requests
	var lines []string
	for _, p := range pods.Items {
		var r requests
		for _, c := range p.Spec.Containers {
			r.add(1, c.Resources.Requests["cpu"], c.Resources.Requests["memory"])
		}
		total.milliCPU += r.milliCPU
		total.memory += r.memory
		lines = append(lines, fmt.Sprintf("%s: %s", p.Metadata.Name, r))
	}
	return total, lines
}

func TestDay2Sizing(t *testing.T) {
	getDay2(t)
	system, sysLines := running(t, "kube-system")
	t.Logf("kube-system, as the node runs it: %s\n  %s", system, strings.Join(sysLines, "\n  "))
	if system.milliCPU > assumedSystemMilliCPU || system.memory > assumedSystemMemory {
		t.Errorf("kube-system requests %s, more than infra/sizing_test.go assumes (%dm, %d Mi)", system, assumedSystemMilliCPU, assumedSystemMemory>>20)
	}
	ours, lines := readocrAtMost(t)
	t.Logf("readocr at most (manifests/): %s\n  %s", ours, strings.Join(lines, "\n  "))
	alloc := strings.Fields(kubectl(t, "get", "nodes", "-o", "jsonpath={.items[0].status.allocatable.cpu} {.items[0].status.allocatable.memory}"))
	var node requests
	node.add(1, alloc[0], alloc[1])
	sum := requests{system.milliCPU + ours.milliCPU, system.memory + ours.memory}
	for _, n := range []struct {
		what string
		r    requests
	}{
		{"this e2e's node (allocatable)", node},
		{"minikube start (2 CPUs, 3072 MB, less 512 Mi)", requests{2000, 3072<<20 - systemMemory}},
		{"minikube start --cpus 2 --memory 4g (README, less 512 Mi)", requests{2000, 4096<<20 - systemMemory}},
	} {
		fits := sum.milliCPU <= n.r.milliCPU && sum.memory <= n.r.memory
		t.Logf("%s: %s; kube-system + readocr at most: %s; fits: %v", n.what, n.r, sum, fits)
		if !fits {
			t.Errorf("%s cannot hold kube-system and readocr at most (%s > %s)", n.what, sum, n.r)
		}
	}

	// The scheduler: both autoscalers at their maximum, then a rollout's surge pod, on a node
	// that runs kube-system only (the scenarios before this one delete their namespaces and
	// add-ons without waiting; a first run here counted KEDA's and a NATS stack's pods still
	// terminating, and pods waited for CPU).
	waitNodeRunsOnly(t, "kube-system", 5*time.Minute)
	ns := namespace(t, "readocr-sizing")
	kubectl(t, "apply", "-n", ns, "-f", "manifests")
	for hpa, n := range map[string]string{"readocr": "4", "readocr-worker": "2"} {
		kubectl(t, "patch", "hpa", hpa, "-n", ns, "--type=merge", "-p", `{"spec":{"minReplicas":`+n+`}}`)
	}
	waitReady(t, ns, 4, 4*time.Minute)
	kubectl(t, "rollout", "status", "deploy/readocr-worker", "-n", ns, "--timeout=300s")
	kubectl(t, "rollout", "restart", "deploy/readocr", "-n", ns)
	kubectl(t, "rollout", "restart", "deploy/readocr-worker", "-n", ns)
	kubectl(t, "rollout", "status", "deploy/readocr", "-n", ns, "--timeout=300s")
	kubectl(t, "rollout", "status", "deploy/readocr-worker", "-n", ns, "--timeout=300s")
	all := kubectl(t, "get", "events", "-n", ns, "--field-selector", "reason=FailedScheduling", "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}")
	// Room is what this counts: NATS's pod waits a moment for its claim to be bound by the
	// storage provisioner ("unbound immediate PersistentVolumeClaims"), whatever the node has.
	var waits []string
	for _, e := range strings.Split(all, "\n") {
		if e != "" && !strings.Contains(e, "unbound immediate PersistentVolumeClaims") {
			waits = append(waits, e)
		}
	}
	events := strings.Join(waits, "\n")
	inUse, _ := running(t, ns)
	t.Logf("4 API pods, 2 workers, NATS and two rollouts' surge pods on the node: requests now %s; FailedScheduling for room: %q (all FailedScheduling: %q)", inUse, events, all)
	if events != "" {
		t.Errorf("pods waited for room: %s", events)
	}
	desc := kubectl(t, "describe", "node")
	if i := strings.Index(desc, "Allocated resources:"); i >= 0 {
		t.Logf("kubectl describe node: %s", desc[i:i+min(len(desc)-i, 700)])
	}
}

// waitNodeRunsOnly waits until every pod on the cluster is in namespace keep (terminating ones
// count: they hold their requests until they are gone).
func waitNodeRunsOnly(t *testing.T, keep string, d time.Duration) {
	t.Helper()
	began := time.Now()
	var others []string
	for {
		others = others[:0]
		for _, line := range strings.Split(kubectl(t, "get", "pods", "-A", "--no-headers", "-o", "custom-columns=NS:.metadata.namespace,NAME:.metadata.name"), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] != keep {
				others = append(others, f[0]+"/"+f[1])
			}
		}
		if len(others) == 0 {
			t.Logf("the node runs %s only (waited %s)", keep, time.Since(began).Round(time.Second))
			return
		}
		if time.Since(began) > d {
			t.Fatalf("pods outside %s still on the node after %s: %s", keep, d, strings.Join(others, " "))
		}
		time.Sleep(3 * time.Second)
	}
}
