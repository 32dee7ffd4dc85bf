package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
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
		c + ".resources.requests.cpu":                      "100m",
		c + ".resources.limits.cpu":                        at(t, api, c+".resources.limits.cpu"),
		c + ".resources.limits.memory":                     at(t, api, c+".resources.limits.memory"),
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
		"spec.metrics.0.resource.name": "cpu",
	})
	if _, ok := rec.resources[scaledObjectKey]; ok {
		t.Error("a ScaledObject without KEDA: kubectl apply -f manifests would fail on a cluster without its CRDs")
	}
}

func TestNATS(t *testing.T) {
	rec := render(t, DefaultConfig("0.1.0"))
	sts := rec.get(t, natsStatefulSet)
	pod, c := "spec.template.spec", "spec.template.spec.containers.0"
	expect(t, sts, map[string]any{
		"spec.replicas":                    1,
		"spec.serviceName":                 "readocr-nats-headless",
		"spec.podManagementPolicy":         "Parallel",
		c + ".image":                       NATSImage,
		c + ".args.1":                      "/etc/nats/nats.conf",
		c + ".readinessProbe.httpGet.path": "/healthz?js-enabled-only=true",
		c + ".volumeMounts.0.mountPath":    "/data",
		// The volume is a real claim, never an emptyDir: jobs survive the pod.
		"spec.volumeClaimTemplates.0.metadata.name":                   "data",
		"spec.volumeClaimTemplates.0.spec.resources.requests.storage": "1Gi",
		"spec.volumeClaimTemplates.0.spec.accessModes.0":              "ReadWriteOnce",
		// Restricted Pod Security.
		pod + ".securityContext.runAsNonRoot":           true,
		pod + ".securityContext.seccompProfile.type":    "RuntimeDefault",
		pod + ".automountServiceAccountToken":           false,
		c + ".securityContext.allowPrivilegeEscalation": false,
		c + ".securityContext.capabilities.drop.0":      "ALL",
		c + ".securityContext.readOnlyRootFilesystem":   true,
	})
	conf := natsConf(t, rec)
	for _, want := range []string{"store_dir: /data", "max_file_store: 921MB", "http_port: 8222", "server_name: $POD_NAME"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "cluster") {
		t.Errorf("one server configured as a cluster:\n%s", conf)
	}
	expect(t, rec.get(t, "kubernetes:core/v1:Service/readocr-nats-headless"), map[string]any{
		"spec.clusterIP": "None", "spec.publishNotReadyAddresses": true,
	})

	// NATS is reachable from readocr's pods only (client and route ports), and its monitoring
	// port from KEDA's namespace only.
	np := rec.get(t, natsPolicy)
	expect(t, np, map[string]any{
		"spec.policyTypes.0":          "Ingress",
		"spec.ingress.0.ports.0.port": 4222,
		"spec.ingress.0.ports.1.port": 6222,
		"spec.ingress.1.ports.0.port": 8222,
	})
	if got := at(t, np, "spec.ingress.0.from.0.podSelector.matchLabels").(map[string]any); len(got) != 1 || got["app.kubernetes.io/part-of"] != "readocr" {
		t.Errorf("NATS clients: %v", got)
	}
	if got := at(t, np, "spec.ingress.1.from.0.namespaceSelector.matchLabels").(map[string]any); got["kubernetes.io/metadata.name"] != "keda" {
		t.Errorf("monitoring clients: %v", got)
	}
	if len(at(t, np, "spec.ingress").([]any)) != 2 {
		t.Error("NATS admits more than readocr's pods and KEDA")
	}
}

// The production stack runs three servers that find each other by their stable names, and
// keeps three copies of each job.
func TestNATSCluster(t *testing.T) {
	rec := renderStack(t, "production", nil)
	expect(t, rec.get(t, natsStatefulSet), map[string]any{"spec.replicas": 3})
	expect(t, rec.get(t, configMap), map[string]any{"data.OCR_NATS_REPLICAS": "3"})
	conf := natsConf(t, rec)
	for i := range 3 {
		route := "nats://readocr-nats-" + string(rune('0'+i)) + ".readocr-nats-headless:6222"
		if !strings.Contains(conf, route) {
			t.Errorf("nats.conf lacks the route %s:\n%s", route, conf)
		}
	}
	for _, bad := range []int{0, 2, 4} {
		c := DefaultConfig("0.1.0")
		c.NATSReplicas = bad
		if c.validate() == nil {
			t.Errorf("natsReplicas %d accepted: JetStream needs a majority", bad)
		}
	}
}

// With KEDA the workers scale on the jobs waiting in the stream the service declares, and the
// ScaledObject takes over the worker's CPU autoscaler instead of fighting it.
func TestKEDA(t *testing.T) {
	cfg := DefaultConfig("0.1.0")
	cfg.KEDA = true
	rec := render(t, cfg)
	so := rec.get(t, scaledObjectKey)
	expect(t, so, map[string]any{
		"spec.scaleTargetRef.name":                              "readocr-worker",
		"spec.advanced.horizontalPodAutoscalerConfig.name":      "readocr-worker",
		"spec.minReplicaCount":                                  1,
		"spec.maxReplicaCount":                                  2,
		"spec.triggers.0.type":                                  "nats-jetstream",
		"spec.triggers.0.metadata.natsServerMonitoringEndpoint": "readocr-nats.default.svc.cluster.local:8222",
		"spec.triggers.0.metadata.stream":                       "READOCR_JOBS",
		"spec.triggers.0.metadata.consumer":                     "workers",
		"spec.triggers.1.type":                                  "cpu",
	})
	if at(t, so, "metadata.annotations").(map[string]any)["scaledobject.keda.sh/transfer-hpa-ownership"] != "true" {
		t.Error("the ScaledObject does not take over the CPU autoscaler: KEDA refuses a target that has one")
	}
	// The names are the service's own.
	b, err := os.ReadFile("../service/internal/jobs/broker.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`streamName   = "` + jobsStream + `"`, `consumerName = "` + jobsConsumer + `"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("service/internal/jobs/broker.go lacks %s", want)
		}
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

func natsConf(t *testing.T, rec *recorder) string {
	t.Helper()
	s, _ := at(t, rec.get(t, natsConfigMap), "data").(map[string]any)["nats.conf"].(string)
	return s
}

// nats-server itself reads the rendered configuration (its own parser, as the pod's server
// does), one server and the production cluster of three.
func TestNATSConfigParses(t *testing.T) {
	t.Setenv("POD_NAME", "readocr-nats-1")
	for stack, servers := range map[string]int{"minikube": 1, "production": 3} {
		file := filepath.Join(t.TempDir(), "nats.conf")
		os.WriteFile(file, []byte(natsConf(t, renderStack(t, stack, nil))), 0o644)
		opts, err := server.ProcessConfigFile(file)
		if err != nil {
			t.Fatalf("%s: nats-server refuses its configuration: %v", stack, err)
		}
		if opts.ServerName != "readocr-nats-1" || !opts.JetStream || opts.StoreDir != "/data" || opts.HTTPPort != 8222 || opts.Port != 4222 {
			t.Errorf("%s: %+v", stack, opts)
		}
		if servers == 1 && (opts.Cluster.Port != 0 || len(opts.Routes) != 0) {
			t.Errorf("%s: a cluster of one", stack)
		}
		if servers == 3 {
			if opts.Cluster.Name != "readocr" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 {
				t.Errorf("%s: cluster %+v, routes %v", stack, opts.Cluster, opts.Routes)
			}
			if opts.JetStreamMaxStore != 9216<<20 {
				t.Errorf("%s: file store %d, want 90 %% of 10 Gi", stack, opts.JetStreamMaxStore)
			}
		}
	}
}
