package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// recorder is a pulumi.MockResourceMonitor that keeps every resource's inputs: the tests read
// the declared objects as plain maps, as the provider would receive them.
type recorder struct {
	mu        sync.Mutex
	resources map[string]map[string]any // "type/name" -> inputs
	ignored   map[string][]string       // "type/name" -> the ignoreChanges option's paths
}

func (r *recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resources[args.TypeToken+"/"+args.Name] = args.Inputs.Mappable()
	if args.RegisterRPC != nil {
		r.ignored[args.TypeToken+"/"+args.Name] = args.RegisterRPC.GetIgnoreChanges()
	}
	outputs := args.Inputs.Copy()
	if args.TypeToken == "docker:index/image:Image" {
		// What pulumi-docker v4 returns for a build that is not pushed: imageName is the name it
		// was given, and repoDigest is empty (it is the pushed manifest's digest).
		outputs["imageName"] = args.Inputs["imageName"]
		outputs["repoDigest"] = resource.NewStringProperty("")
	}
	return args.Name + "_id", outputs, nil
}

func newRecorder() *recorder {
	return &recorder{resources: map[string]map[string]any{}, ignored: map[string][]string{}}
}

func (r *recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

// render runs the program with cfg against the mocks.
func render(t *testing.T, cfg Config) *recorder {
	t.Helper()
	rec := newRecorder()
	err := pulumi.RunErr(func(ctx *pulumi.Context) error { return program(ctx, cfg) },
		pulumi.WithMocks("readocr", "test", rec))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (r *recorder) get(t *testing.T, key string) map[string]any {
	t.Helper()
	m, ok := r.resources[key]
	if !ok {
		keys := make([]string, 0, len(r.resources))
		for k := range r.resources {
			keys = append(keys, k)
		}
		t.Fatalf("no resource %s; have %v", key, keys)
	}
	return m
}

// at walks a path like "spec.template.spec.containers.0.image" through maps and slices (label
// keys, which contain dots, are read from the map at their parent's path).
func at(t *testing.T, v any, path string) any {
	t.Helper()
	for _, p := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[p]
		case []any:
			var i int
			fmt.Sscan(p, &i)
			if i >= len(c) {
				t.Fatalf("%s: index %d out of %d", path, i, len(c))
			}
			v = c[i]
		default:
			t.Fatalf("%s: cannot descend into %T at %q", path, v, p)
		}
	}
	return v
}

func expect(t *testing.T, obj map[string]any, want map[string]any) {
	t.Helper()
	for path, w := range want {
		got := at(t, obj, path)
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", path, got, w)
		}
	}
}

const (
	deployment = "kubernetes:apps/v1:Deployment/readocr"
	service    = "kubernetes:core/v1:Service/readocr"
	configMap  = "kubernetes:core/v1:ConfigMap/readocr"
	account    = "kubernetes:core/v1:ServiceAccount/readocr"
	pdb        = "kubernetes:policy/v1:PodDisruptionBudget/readocr"
	hpa        = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler/readocr"
)

func TestWorkload(t *testing.T) {
	rec := render(t, DefaultConfig("0.1.0"))
	dep := rec.get(t, deployment)
	pod := "spec.template.spec"
	c := pod + ".containers.0"
	expect(t, dep, map[string]any{
		"spec.strategy.type":                         "RollingUpdate",
		"spec.strategy.rollingUpdate.maxSurge":       1,
		"spec.strategy.rollingUpdate.maxUnavailable": 0,
		c + ".image":                                           "ghcr.io/readocr/readocr:0.1.0",
		c + ".imagePullPolicy":                                 "IfNotPresent",
		c + ".ports.0.containerPort":                           4000,
		c + ".startupProbe.httpGet.path":                       "/readyz",
		c + ".readinessProbe.httpGet.path":                     "/readyz",
		c + ".livenessProbe.httpGet.path":                      "/healthz",
		c + ".ports.1.name":                                    "admin",
		c + ".ports.1.containerPort":                           9090,
		c + ".resources.requests.cpu":                          "125m",
		c + ".resources.requests.memory":                       "256Mi",
		c + ".resources.limits.cpu":                            "1",
		c + ".resources.limits.memory":                         "768Mi",
		c + ".resources.requests.ephemeral-storage":            "64Mi",
		c + ".resources.limits.ephemeral-storage":              "576Mi",
		c + ".env.0.name":                                      "OCR_WORKERS",
		c + ".env.0.valueFrom.resourceFieldRef.resource":       "limits.cpu",
		c + ".env.1.name":                                      "GOMAXPROCS",
		c + ".env.1.valueFrom.resourceFieldRef.resource":       "limits.cpu",
		c + ".envFrom.0.configMapRef.name":                     "readocr",
		c + ".lifecycle.preStop.sleep.seconds":                 5,
		pod + ".terminationGracePeriodSeconds":                 30,
		pod + ".serviceAccountName":                            "readocr",
		pod + ".automountServiceAccountToken":                  false,
		pod + ".topologySpreadConstraints.0.topologyKey":       "kubernetes.io/hostname",
		pod + ".topologySpreadConstraints.0.whenUnsatisfiable": "ScheduleAnyway",
		// The restricted Pod Security Standard.
		pod + ".securityContext.runAsNonRoot":           true,
		pod + ".securityContext.runAsUser":              65532,
		pod + ".securityContext.seccompProfile.type":    "RuntimeDefault",
		c + ".securityContext.allowPrivilegeEscalation": false,
		c + ".securityContext.capabilities.drop.0":      "ALL",
		c + ".securityContext.readOnlyRootFilesystem":   true,
		c + ".securityContext.runAsNonRoot":             true,
		// The one writable directory, on disk (a tmpfs would count against the memory limit).
		c + ".volumeMounts.0.mountPath":       "/tmp",
		pod + ".volumes.0.name":               "tmp",
		pod + ".volumes.0.emptyDir.sizeLimit": "256Mi",
	})
	// The grace period covers the pre-stop pause and the service's own shutdown timeout.
	cm := rec.get(t, configMap)
	expect(t, cm, map[string]any{"data.OCR_SHUTDOWN_TIMEOUT": "20s", "data.OCR_ADMIN_PORT": "9090",
		"data.OCR_JOBS": "true", "data.OCR_NATS_URL": "nats://readocr-nats:4222", "data.OCR_NATS_REPLICAS": "1"})
	expect(t, dep, map[string]any{c + ".env.2.name": "OCR_ROLE", c + ".env.2.value": "api",
		c + ".envFrom.1.secretRef.name": "readocr-webhook", c + ".envFrom.1.secretRef.optional": true})
	ann := at(t, dep, "spec.template.metadata.annotations").(map[string]any)
	if hash := ann["readocr.dev/config-hash"]; hash == nil || hash == "" {
		t.Error("pod template lacks the config hash annotation")
	}
	if ann["prometheus.io/port"] != "9090" || ann["prometheus.io/scrape"] != "true" {
		t.Errorf("pod template's Prometheus annotations: %v", ann)
	}
	// The HorizontalPodAutoscaler owns the replica count: a Deployment that set it would reset
	// the autoscaler's choice on every apply.
	if _, ok := at(t, dep, "spec").(map[string]any)["replicas"]; ok {
		t.Error("the Deployment sets replicas")
	}

	expect(t, rec.get(t, service), map[string]any{
		"spec.type": "NodePort", "spec.ports.0.port": 4000, "spec.ports.0.nodePort": 30400, "spec.ports.0.targetPort": "http",
	})
	if ports := at(t, rec.get(t, service), "spec.ports").([]any); len(ports) != 1 {
		t.Errorf("the Service exposes %d ports; the admin port must stay off it", len(ports))
	}
	expect(t, rec.get(t, account), map[string]any{"automountServiceAccountToken": false})
	expect(t, rec.get(t, pdb), map[string]any{"spec.maxUnavailable": 1})
	expect(t, rec.get(t, hpa), map[string]any{
		"spec.minReplicas": 2, "spec.maxReplicas": 4, "spec.scaleTargetRef.name": "readocr",
		"spec.metrics.0.resource.name": "cpu", "spec.metrics.0.resource.target.type": "AverageValue",
		"spec.metrics.0.resource.target.averageValue": "500m",
	})

	for key, obj := range rec.resources {
		if !strings.HasPrefix(key, "kubernetes:") || strings.HasPrefix(key, "pulumi:providers") {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		if _, ok := meta["namespace"]; ok {
			t.Errorf("%s carries a namespace: manifests must apply into any namespace", key)
		}
		labels, _ := meta["labels"].(map[string]any)
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/component", "app.kubernetes.io/part-of"} {
			if labels[l] == nil {
				t.Errorf("%s lacks the recommended label %s", key, l)
			}
		}
	}
	// API: ConfigMap, ServiceAccount, Deployment, Service, PDB, HPA; workers: Deployment, PDB,
	// HPA; NATS: ConfigMap, two Services, StatefulSet, PDB, NetworkPolicy; the API's and the
	// workers' NetworkPolicies.
	if n := len(rec.resources); n != 17 {
		t.Errorf("%d resources, want 17 (no provider, no image build, no KEDA, no keys by default)", n)
	}
}

// Selectors must match their own pods and no other (the API's Service must not send requests
// to workers or NATS), and must not include the version (it changes).
func TestSelectorsMatchPods(t *testing.T) {
	rec := render(t, DefaultConfig("0.1.0"))
	pods := map[string]map[string]any{
		"api":    at(t, rec.get(t, deployment), "spec.template.metadata.labels").(map[string]any),
		"worker": at(t, rec.get(t, workerDeployment), "spec.template.metadata.labels").(map[string]any),
		"nats":   at(t, rec.get(t, natsStatefulSet), "spec.template.metadata.labels").(map[string]any),
	}
	selects := func(sel, labels map[string]any) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	for _, s := range []struct {
		what, pods string
		sel        any
	}{
		{"deployment", "api", at(t, rec.get(t, deployment), "spec.selector.matchLabels")},
		{"service", "api", at(t, rec.get(t, service), "spec.selector")},
		{"pdb", "api", at(t, rec.get(t, pdb), "spec.selector.matchLabels")},
		{"worker deployment", "worker", at(t, rec.get(t, workerDeployment), "spec.selector.matchLabels")},
		{"worker pdb", "worker", at(t, rec.get(t, "kubernetes:policy/v1:PodDisruptionBudget/readocr-worker"), "spec.selector.matchLabels")},
		{"nats statefulset", "nats", at(t, rec.get(t, natsStatefulSet), "spec.selector.matchLabels")},
		{"nats service", "nats", at(t, rec.get(t, "kubernetes:core/v1:Service/readocr-nats"), "spec.selector")},
		{"nats headless service", "nats", at(t, rec.get(t, "kubernetes:core/v1:Service/readocr-nats-headless"), "spec.selector")},
		{"nats network policy", "nats", at(t, rec.get(t, natsPolicy), "spec.podSelector.matchLabels")},
	} {
		sel := s.sel.(map[string]any)
		if _, ok := sel["app.kubernetes.io/version"]; ok {
			t.Errorf("%s selects on the version", s.what)
		}
		for kind, labels := range pods {
			if got := selects(sel, labels); got != (kind == s.pods) {
				t.Errorf("%s selects %s pods: %v, want %v", s.what, kind, got, kind == s.pods)
			}
		}
	}
}

// With build, pulumi-docker builds the Dockerfile into the local engine, tagged with a hash of
// the build inputs: a code change is a new tag, which rolls the pods (imageName alone never
// changes, and repoDigest is empty when nothing is pushed).
func TestBuildImage(t *testing.T) {
	cfg := DefaultConfig("0.1.0")
	cfg.Build = true
	rec := render(t, cfg)
	img := rec.get(t, "docker:index/image:Image/readocr")
	name, _ := img["imageName"].(string)
	sum, err := contextHash("..")
	if err != nil {
		t.Fatal(err)
	}
	if name != "ghcr.io/readocr/readocr:0.1.0-"+sum || len(sum) != 12 {
		t.Errorf("image name %q, want the version and the build inputs' hash %s", name, sum)
	}
	expect(t, img, map[string]any{"skipPush": true, "build.dockerfile": "../Dockerfile", "build.context": ".."})
	if got := at(t, rec.get(t, deployment), "spec.template.spec.containers.0.image"); got != name {
		t.Errorf("deployment image %v, want the build's %s", got, name)
	}
	// Any change to what the image is built from changes the tag.
	dir := t.TempDir()
	for _, in := range buildInputs {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(in)), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	a, _ := contextHash(dir)
	os.MkdirAll(filepath.Join(dir, "service"), 0o755)
	os.WriteFile(filepath.Join(dir, "service", "x.go"), []byte("package x\n"), 0o644)
	if b, _ := contextHash(dir); a == b {
		t.Error("a new source file left the hash unchanged")
	}
}

func TestRenderAndNamespaceUseAProvider(t *testing.T) {
	cfg := DefaultConfig("0.1.0")
	cfg.RenderDir = "/tmp/out"
	cfg.Namespace = "ocr-test"
	rec := render(t, cfg)
	p := rec.get(t, "pulumi:providers:kubernetes/k8s")
	expect(t, p, map[string]any{"renderYamlToDirectory": "/tmp/out", "namespace": "ocr-test"})
}

func TestConfigValidation(t *testing.T) {
	for _, mutate := range []func(*Config){
		func(c *Config) { c.MinReplicas = 0 },
		func(c *Config) { c.MaxReplicas = 1 },
		func(c *Config) { c.ServiceType = "Ingress" },
		func(c *Config) { c.Image = "readocr:latest" },
		func(c *Config) { c.Image = "readocr" },
		func(c *Config) { c.Image = "ghcr.io/x/readocr@sha256:abc" },
	} {
		c := DefaultConfig("0.1.0")
		mutate(&c)
		if err := c.validate(); err == nil {
			b, _ := json.Marshal(c)
			t.Errorf("accepted %s", b)
		}
	}
	if err := DefaultConfig("0.1.0").validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	c := DefaultConfig("0.1.0")
	c.Image = "ghcr.io/readocr/readocr@sha256:" + strings.Repeat("a", 64)
	if err := c.validate(); err != nil {
		t.Errorf("a digest: %v", err)
	}
}
