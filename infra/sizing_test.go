package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
)

// A minikube node, as the scheduler sees it.
type node struct {
	what     string
	milliCPU int64
	memory   int64 // bytes
}

// minikube v1.37.0's defaults (cmd/minikube/cmd/start_flags.go, start.go): 2 CPUs; memory, with
// no --memory, 25 % of the host's (of Docker's, with the docker driver) clamped to 3072-6144 MB
// (suggestMemoryAllocation): 3072 on hosts up to 12 GB, the smallest a default minikube has.
// Kubelet reserves nothing there (no kube-reserved or system-reserved, memory eviction
// threshold 0: the kubeadm template sets only the disk ones). The kubelet, the container
// runtime and the kernel live in the same memory without requesting it: 512 Mi is set aside
// for them here (a judgment; the scheduler would admit pods up to the full size).
var (
	defaultMinikube = node{"minikube start (2 CPUs, 3072 MB)", 2000, 3072<<20 - systemMemory}
	readmeMinikube  = node{"minikube start --cpus 2 --memory 4g (README)", 2000, 4096<<20 - systemMemory}
)

const systemMemory = 512 << 20

// podRequest is a pod running beside ours, with what it requests.
type podRequest struct {
	what     string
	milliCPU int64
	memory   int64
}

// controlPlane is what minikube runs before readocr, with kubeadm v1.33's requests
// (cmd/kubeadm/app/phases/controlplane/manifests.go, etcd/local.go, addons/dns/manifests.go:
// kube-proxy requests nothing) and the addons the README enables (minikube's metrics-server
// addon; the storage provisioner requests nothing).
var controlPlane = []podRequest{
	{"kube-apiserver", 250, 0},
	{"kube-controller-manager", 200, 0},
	{"kube-scheduler", 100, 0},
	{"etcd", 100, 100 << 20},
	{"coredns", 100, 70 << 20},
	{"metrics-server", 100, 200 << 20},
}

// keda is KEDA v2.21.0's operator and metrics API server (config/manager, config/metrics-server),
// for the README's optional manifests/keda.
var keda = []podRequest{{"keda-operator", 100, 100 << 20}, {"keda-operator-metrics-apiserver", 100, 100 << 20}}

// Every pod readocr can run at once fits the node beside the control plane: each Deployment
// at its autoscaler's maximum plus the extra pod of a rolling update, and the NATS servers.
// The default minikube runs the plain manifests; the README's runs KEDA as well.
func TestSizingFitsMinikube(t *testing.T) {
	plain := render(t, DefaultConfig("0.1.0"))
	withKEDA := DefaultConfig("0.1.0")
	withKEDA.KEDA = true
	for _, c := range []struct {
		node   node
		rec    *recorder
		others []podRequest
	}{
		{defaultMinikube, plain, controlPlane},
		{readmeMinikube, plain, controlPlane},
		{readmeMinikube, render(t, withKEDA), append(append([]podRequest{}, controlPlane...), keda...)},
	} {
		pods := append(readocrAtMost(t, c.rec), c.others...)
		var cpu, mem int64
		count := map[podRequest]int{}
		for _, p := range pods {
			cpu += p.milliCPU
			mem += p.memory
			count[p]++
		}
		var lines []string
		for p, n := range count {
			lines = append(lines, fmt.Sprintf("%d x %s %dm/%dMi", n, p.what, p.milliCPU, p.memory>>20))
		}
		sort.Strings(lines)
		t.Logf("%s: %s = %dm of %dm CPU, %dMi of %dMi", c.node.what, strings.Join(lines, " + "),
			cpu, c.node.milliCPU, mem>>20, c.node.memory>>20)
		if cpu > c.node.milliCPU || mem > c.node.memory {
			t.Errorf("%s: requests %dm CPU and %dMi exceed %dm and %dMi", c.node.what, cpu, mem>>20, c.node.milliCPU, c.node.memory>>20)
		}
		for _, p := range pods {
			if p.milliCPU == 0 && strings.HasPrefix(p.what, "readocr") {
				t.Errorf("%s requests no CPU", p.what)
			}
		}
	}
}

// readocrAtMost is every pod of the rendered workload at once: each Deployment's autoscaler
// maximum (its HorizontalPodAutoscaler or KEDA's ScaledObject) and a rolling update's extra pod
// (maxSurge), each StatefulSet's replicas (updated one by one: no extra pod).
func readocrAtMost(t *testing.T, rec *recorder) []podRequest {
	t.Helper()
	maxOf := map[string]int{}
	for key, obj := range rec.resources {
		switch {
		case strings.Contains(key, ":HorizontalPodAutoscaler/"):
			maxOf[fmt.Sprint(at(t, obj, "spec.scaleTargetRef.name"))] = int(at(t, obj, "spec.maxReplicas").(float64))
		case strings.Contains(key, ":ScaledObject/"):
			maxOf[fmt.Sprint(at(t, obj, "spec.scaleTargetRef.name"))] = int(at(t, obj, "spec.maxReplicaCount").(float64))
		}
	}
	var pods []podRequest
	for key, obj := range rec.resources {
		n := fmt.Sprint(at(t, obj, "metadata.name"))
		var count int
		switch {
		case strings.Contains(key, ":Deployment/"):
			hi, ok := maxOf[n]
			if !ok {
				t.Fatalf("Deployment %s has no autoscaler", n)
			}
			count = hi + int(at(t, obj, "spec.strategy.rollingUpdate.maxSurge").(float64))
		case strings.Contains(key, ":StatefulSet/"):
			count = int(at(t, obj, "spec.replicas").(float64))
		default:
			continue
		}
		cpu, mem := podRequests(t, at(t, obj, "spec.template.spec").(map[string]any))
		for range count {
			pods = append(pods, podRequest{n, cpu, mem})
		}
	}
	return pods
}

func podRequests(t *testing.T, spec map[string]any) (cpu, memory int64) {
	t.Helper()
	for _, c := range spec["containers"].([]any) {
		req, _ := at(t, c, "resources.requests").(map[string]any)
		m, err1 := milliCPU(fmt.Sprint(req["cpu"]))
		b, err2 := bytesOf(fmt.Sprint(req["memory"]))
		if err := firstErr(err1, err2); err != nil {
			t.Fatalf("container requests %v: %v", req, err)
		}
		cpu, memory = cpu+m, memory+b
	}
	return cpu, memory
}

// Every container states its ephemeral storage, and its limit holds what its pod writes: the
// emptyDirs at their size limits and the logs the kubelet keeps (five files of 10 Mi).
func TestEphemeralStorage(t *testing.T) {
	for _, stack := range []string{"minikube", "staging", "production"} {
		for key, obj := range renderStack(t, stack, nil).resources {
			spec, ok := obj["spec"].(map[string]any)
			if !ok || spec["template"] == nil {
				continue
			}
			pod := at(t, spec, "template.spec").(map[string]any)
			var dirs int64
			for _, v := range asSlice(pod["volumes"]) {
				if ed, ok := v.(map[string]any)["emptyDir"].(map[string]any); ok {
					size, err := bytesOf(fmt.Sprint(ed["sizeLimit"]))
					if err != nil || size == 0 {
						t.Errorf("%s %s: an emptyDir without a size limit", stack, key)
					}
					dirs += size
				}
			}
			for _, c := range pod["containers"].([]any) {
				req, err1 := bytesOf(fmt.Sprint(at(t, c, "resources.requests").(map[string]any)["ephemeral-storage"]))
				lim, err2 := bytesOf(fmt.Sprint(at(t, c, "resources.limits").(map[string]any)["ephemeral-storage"]))
				if err := firstErr(err1, err2); err != nil || req == 0 {
					t.Errorf("%s %s: ephemeral storage %v", stack, key, err)
					continue
				}
				if lim < dirs+50<<20 || req > lim {
					t.Errorf("%s %s: ephemeral limit %dMi for %dMi of emptyDirs and 50Mi of logs (request %dMi)", stack, key, lim>>20, dirs>>20, req>>20)
				}
			}
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// The CPU autoscalers follow the work: one pod busy at its CPU limit beside idle ones does not
// send the count to the maximum, and every pod busy adds pods. Evaluated with the
// HorizontalPodAutoscaler's own rule (desired = ceil(current x metric / target), no change
// within 10 %) on the rendered objects of every stack.
func TestAutoscalersFollowTheWork(t *testing.T) {
	for _, stack := range []string{"minikube", "staging", "production"} {
		rec := renderStack(t, stack, nil)
		for key, h := range rec.resources {
			if !strings.Contains(key, ":HorizontalPodAutoscaler/") {
				continue
			}
			target := fmt.Sprint(at(t, h, "spec.scaleTargetRef.name"))
			c := at(t, rec.get(t, "kubernetes:apps/v1:Deployment/"+target), "spec.template.spec.containers.0.resources").(map[string]any)
			request, _ := milliCPU(fmt.Sprint(c["requests"].(map[string]any)["cpu"]))
			limit, _ := milliCPU(fmt.Sprint(c["limits"].(map[string]any)["cpu"]))
			lo, hi := int(at(t, h, "spec.minReplicas").(float64)), int(at(t, h, "spec.maxReplicas").(float64))
			usage := make([]int64, lo)
			for i := range usage {
				usage[i] = 10 // idle
			}
			usage[0] = limit
			if got := hpaDesired(t, h, request, usage); got > lo+1 {
				t.Errorf("%s %s: one busy pod of %d asks for %d pods (max %d)", stack, target, lo, got, hi)
			}
			for i := range usage {
				usage[i] = limit
			}
			if got := hpaDesired(t, h, request, usage); got <= lo && lo < hi {
				t.Errorf("%s %s: %d pods all busy ask for %d", stack, target, lo, got)
			}
		}
	}
}

// hpaDesired is the HorizontalPodAutoscaler's replica count for pods using usage millicores.
func hpaDesired(t *testing.T, h map[string]any, request int64, usage []int64) int {
	target := at(t, h, "spec.metrics.0.resource.target").(map[string]any)
	var sum float64
	for _, u := range usage {
		sum += float64(u)
	}
	avg := sum / float64(len(usage))
	var ratio float64
	switch target["type"] {
	case "Utilization":
		ratio = avg * 100 / float64(request) / target["averageUtilization"].(float64)
	case "AverageValue":
		v, err := milliCPU(fmt.Sprint(target["averageValue"]))
		if err != nil {
			t.Fatal(err)
		}
		ratio = avg / float64(v)
	default:
		t.Fatalf("target %v", target)
	}
	n := len(usage)
	if math.Abs(ratio-1) > 0.1 {
		n = int(math.Ceil(float64(n) * ratio))
	}
	lo, hi := int(at(t, h, "spec.minReplicas").(float64)), int(at(t, h, "spec.maxReplicas").(float64))
	return min(max(n, lo), hi)
}
