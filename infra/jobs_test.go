package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

const (
	workerDeployment = "kubernetes:apps/v1:Deployment/readocr-worker"
	workerHPA        = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler/readocr-worker"
	natsStatefulSet  = "kubernetes:apps/v1:StatefulSet/readocr-nats"
	natsConfigMap    = "kubernetes:core/v1:ConfigMap/readocr-nats"
	natsPolicy       = "kubernetes:networking.k8s.io/v1:NetworkPolicy/readocr-nats"
	scaledObjectKey  = "kubernetes:keda.sh/v1alpha1:ScaledObject/readocr-worker"
)

// Workers are the API's pod told another role: same image, settings and limits, a smaller CPU
// request, their own autoscaler, no pre-stop pause (no Service sends them requests).
func TestWorkers(t *testing.T) {
	rec := render(t, DefaultConfig("0.1.0"))
	api, w := rec.get(t, deployment), rec.get(t, workerDeployment)
	c := "spec.template.spec.containers.0"
	expect(t, w, map[string]any{
		c + ".image":                                       at(t, api, c+".image"),
		c + ".env.2.name":                                  "OCR_ROLE",
		c + ".env.2.value":                                 "worker",
		c + ".envFrom.0.configMapRef.name":                 "readocr",
		c + ".resources.requests.cpu":                      "50m",
		c + ".resources.limits.cpu":                        at(t, api, c+".resources.limits.cpu"),
		c + ".resources.limits.memory":                     at(t, api, c+".resources.limits.memory"),
		c + ".resources.limits.ephemeral-storage":          at(t, api, c+".resources.limits.ephemeral-storage"),
		c + ".securityContext.readOnlyRootFilesystem":      true,
		"spec.template.spec.terminationGracePeriodSeconds": 30,
	})
	labels := at(t, w, "metadata.labels").(map[string]any)
	if labels["app.kubernetes.io/component"] != "worker" || labels["app.kubernetes.io/part-of"] != "readocr" {
		t.Errorf("worker labels %v", labels)
	}
	if _, ok := at(t, w, c).(map[string]any)["lifecycle"]; ok {
		t.Error("workers pause before SIGTERM, but no Service routes to them")
	}
	if _, ok := at(t, w, "spec").(map[string]any)["replicas"]; ok {
		t.Error("the worker Deployment sets replicas: its autoscaler owns them")
	}
	expect(t, rec.get(t, workerHPA), map[string]any{
		"spec.minReplicas": 1, "spec.maxReplicas": 2, "spec.scaleTargetRef.name": "readocr-worker",
		"spec.metrics.0.resource.name": "cpu", "spec.metrics.0.resource.target.averageValue": "500m",
	})
	if _, ok := rec.resources[scaledObjectKey]; ok {
		t.Error("a ScaledObject without KEDA: kubectl apply -f manifests would fail on a cluster without its CRDs")
	}
}

// With KEDA the workers scale on the jobs waiting and running in the stream the service
// declares, from none, and there is no CPU autoscaler of ours to fight KEDA's.
func TestKEDA(t *testing.T) {
	cfg := DefaultConfig("0.1.0")
	cfg.KEDA = true
	rec := render(t, cfg)
	so := rec.get(t, scaledObjectKey)
	expect(t, so, map[string]any{
		"spec.scaleTargetRef.name":                              "readocr-worker",
		"spec.advanced.horizontalPodAutoscalerConfig.name":      "readocr-worker",
		"spec.minReplicaCount":                                  0,
		"spec.maxReplicaCount":                                  2,
		"spec.fallback.replicas":                                1,
		"spec.triggers.0.type":                                  "nats-jetstream",
		"spec.triggers.0.metadata.natsServerMonitoringEndpoint": "readocr-nats.default.svc.cluster.local:8222",
		"spec.triggers.0.metadata.stream":                       "READOCR_JOBS",
		"spec.triggers.0.metadata.consumer":                     "workers",
		"spec.triggers.0.metadata.lagThreshold":                 "4",
		"spec.triggers.0.metadata.activationLagThreshold":       "0",
		"spec.triggers.1.type":                                  "nats-jetstream",
		"spec.triggers.1.metadata.stream":                       "READOCR_JOBS",
		"spec.triggers.1.metadata.consumer":                     "page-workers",
		"spec.triggers.1.metadata.activationLagThreshold":       "0",
	})
	if n := len(at(t, so, "spec.triggers").([]any)); n != 2 {
		t.Errorf("%d triggers, want the jobs' and the page tasks' backlogs only (a CPU trigger would keep idle workers from zero)", n)
	}
	if _, ok := rec.resources[workerHPA]; ok {
		t.Error("a CPU autoscaler of ours for the workers beside KEDA's: every pulumi up would fight KEDA")
	}
	if _, ok := rec.resources[hpa]; !ok {
		t.Error("the API lost its CPU autoscaler with KEDA")
	}
	// Over kubectl apply -f manifests (which has the workers' CPU autoscaler), KEDA takes that
	// autoscaler over instead of adding a second one on the same Deployment.
	if at(t, so, "metadata.annotations").(map[string]any)["scaledobject.keda.sh/transfer-hpa-ownership"] != "true" {
		t.Error("the ScaledObject does not take over manifests/' worker autoscaler: two autoscalers on one Deployment")
	}
	// The names are the service's own.
	b, err := os.ReadFile("../service/internal/jobs/broker.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`streamName   = "` + jobsStream + `"`, `consumerName = "` + jobsConsumer + `"`, `pagesConsumer = "` + pagesConsumer + `"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("service/internal/jobs/broker.go lacks %s", want)
		}
	}
	// Zero workers only where something starts one for waiting jobs.
	cfg = DefaultConfig("0.1.0")
	cfg.WorkerMinReplicas = 0
	if cfg.validate() == nil {
		t.Error("workerMinReplicas 0 accepted without KEDA: queued jobs would wait forever")
	}
}

// The NATS image is the server version the jobs code embeds and is tested against.
func TestNATSImageMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod does not require nats-server")
	}
	if want := "nats:" + string(m[1]); NATSImage != want {
		t.Errorf("NATSImage %s, go.mod has %s", NATSImage, want)
	}
}
