package main

import (
	"fmt"
	"regexp"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Config is the stack configuration (Pulumi.<stack>.yaml, key prefix "readocr:"). Defaults
// are what manifests/ is rendered with: a 2-CPU minikube.
type Config struct {
	Version      string // the release (VERSION): the app.kubernetes.io/version label
	Image        string // image reference with a version tag or a digest; ignored when Build is set
	Build        bool   // build the image with pulumi-docker (into minikube's Docker: SkipPush)
	MinReplicas  int    // the HorizontalPodAutoscaler's floor; the Deployment leaves replicas to it
	MaxReplicas  int    // and its ceiling
	ServiceType  string // NodePort (minikube), ClusterIP (behind the Ingress) or LoadBalancer
	NodePort     int    // with NodePort; 0 lets Kubernetes choose
	IngressHost  string // when set, an Ingress for this host routes to the Service
	IngressClass string
	CPURequest   string
	CPULimit     string // also the worker count and GOMAXPROCS
	MemRequest   string
	MemLimit     string // what the service shares out between its workers and requests
	LogLevel     string
	RenderDir    string // write YAML here instead of talking to a cluster (make manifests)
	Namespace    string // "" = the provider's default namespace; manifests/ never carries one

	// Jobs: worker pods run them, NATS JetStream holds them.
	WorkerMinReplicas int    // the worker autoscaler's floor
	WorkerMaxReplicas int    // and its ceiling
	WorkerCPURequest  string // less than the API's: under contention, batch yields to requests
	NATSReplicas      int    // 1, or 3 and more for a cluster that survives losing a server
	NATSStorage       string // each NATS server's volume
	KEDA              bool   // a KEDA ScaledObject scales the workers on queue depth (manifests/keda)
}

// Registry is where the release pipeline publishes the image (README, CI/CD); `make image`
// tags its build with the same name, so manifests name the image users also load.
const Registry = "ghcr.io/readocr/readocr"

// DefaultConfig is what manifests/ is rendered from: sized so that the default minikube (2 CPUs,
// the control plane requesting ~0.75 of them) runs two pods, a rolling update's extra pod, and
// the autoscaler's maximum of four.
func DefaultConfig(version string) Config {
	return Config{
		Version:     version,
		Image:       Registry + ":" + version,
		MinReplicas: 2,
		MaxReplicas: 4,
		ServiceType: "NodePort",
		NodePort:    30400,
		// One worker per pod (the CPU limit): 250m requested, so four pods and a surge pod fit
		// beside minikube's control plane; a busy pod uses its whole CPU and the autoscaler
		// (70 % of the request) adds pods early.
		CPURequest: "250m",
		CPULimit:   "1",
		// 768 Mi with one worker admits pages up to 16 MP in colour, 24 MP in grayscale
		// (README, Limits). Idle pods use ~100 Mi: requesting half the limit lets five pods
		// (four and a surge) schedule on minikube's default 2.2 GB; the production stack
		// requests its limit in full.
		MemRequest:   "384Mi",
		MemLimit:     "768Mi",
		LogLevel:     "info",
		IngressClass: "nginx",
		// One worker pod, two under load: with two API pods and their surge pod this fits
		// beside the control plane. Requesting 100m, a busy worker gets 0.4 of the CPU
		// share of an API pod: asynchronous pages wait, synchronous ones do not.
		WorkerMinReplicas: 1,
		WorkerMaxReplicas: 2,
		WorkerCPURequest:  "100m",
		NATSReplicas:      1,
		NATSStorage:       "1Gi",
	}
}

// loadConfig reads the stack configuration over the defaults.
func loadConfig(ctx *pulumi.Context, version string) (Config, error) {
	c := DefaultConfig(version)
	cfg := config.New(ctx, "")
	str := func(key string, into *string) {
		if v := cfg.Get(key); v != "" {
			*into = v
		}
	}
	num := func(key string, into *int) {
		if v, err := cfg.TryInt(key); err == nil {
			*into = v
		}
	}
	str("image", &c.Image)
	c.Build = cfg.GetBool("build")
	num("minReplicas", &c.MinReplicas)
	num("maxReplicas", &c.MaxReplicas)
	str("serviceType", &c.ServiceType)
	num("nodePort", &c.NodePort)
	str("ingressHost", &c.IngressHost)
	str("ingressClass", &c.IngressClass)
	str("cpuRequest", &c.CPURequest)
	str("cpuLimit", &c.CPULimit)
	str("memoryRequest", &c.MemRequest)
	str("memoryLimit", &c.MemLimit)
	str("logLevel", &c.LogLevel)
	str("renderDir", &c.RenderDir)
	str("namespace", &c.Namespace)
	num("workerMinReplicas", &c.WorkerMinReplicas)
	num("workerMaxReplicas", &c.WorkerMaxReplicas)
	str("workerCpuRequest", &c.WorkerCPURequest)
	num("natsReplicas", &c.NATSReplicas)
	str("natsStorage", &c.NATSStorage)
	c.KEDA = cfg.GetBool("keda")
	return c, c.validate()
}

// imageRef is a reference with a tag or a digest, never "latest": pods must run what was
// built, loaded or pushed for this release.
var imageRef = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

func (c Config) validate() error {
	if c.MinReplicas < 1 || c.MaxReplicas < c.MinReplicas {
		return fmt.Errorf("minReplicas (%d) must be at least 1 and at most maxReplicas (%d)", c.MinReplicas, c.MaxReplicas)
	}
	if c.WorkerMinReplicas < 1 || c.WorkerMaxReplicas < c.WorkerMinReplicas {
		return fmt.Errorf("workerMinReplicas (%d) must be at least 1 and at most workerMaxReplicas (%d)", c.WorkerMinReplicas, c.WorkerMaxReplicas)
	}
	// JetStream needs a majority of its servers: 2 would stop on losing either one.
	if c.NATSReplicas != 1 && (c.NATSReplicas < 3 || c.NATSReplicas%2 == 0) {
		return fmt.Errorf("natsReplicas %d: want 1, or an odd number from 3 (JetStream needs a majority)", c.NATSReplicas)
	}
	switch c.ServiceType {
	case "NodePort", "LoadBalancer", "ClusterIP":
	default:
		return fmt.Errorf("serviceType %q: want NodePort, LoadBalancer or ClusterIP", c.ServiceType)
	}
	if !c.Build {
		m := imageRef.FindStringSubmatch(c.Image)
		if m == nil || (m[1] == "" && m[2] == "") || m[1] == ":latest" {
			return fmt.Errorf("image %q: name a version tag or a digest, not latest (pods must use what was loaded or pushed)", c.Image)
		}
	}
	return nil
}
