package main

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Config is the stack configuration (Pulumi.<stack>.yaml, key prefix "readocr:").
// Defaults are the ones manifests/ is rendered with.
type Config struct {
	Image       string // image reference with a version tag; ignored when Build is set
	Build       bool   // build the image with pulumi-docker (into minikube's Docker: SkipPush)
	Replicas    int
	ServiceType string // NodePort (minikube) or LoadBalancer / ClusterIP
	NodePort    int    // with NodePort; 0 lets Kubernetes choose
	CPURequest  string
	CPULimit    string // also the worker count and GOMAXPROCS
	MemRequest  string
	MemLimit    string
	GoMemLimit  string // Go heap soft limit; the rest of the limit is Tesseract's C heap
	MaxReplicas int    // HorizontalPodAutoscaler ceiling
	LogLevel    string
	RenderDir   string // write YAML here instead of talking to a cluster (make manifests)
	Namespace   string // "" = the provider's default namespace; manifests/ never carries one
}

// DefaultConfig is what manifests/ is rendered from.
func DefaultConfig(version string) Config {
	return Config{
		Image:       "readocr:" + version,
		Replicas:    3,
		ServiceType: "NodePort",
		NodePort:    30400,
		// Measured (docs/benchmarks.md): ~110 MiB RSS with two workers and eng under load,
		// 52 MiB idle; one worker per CPU of the limit.
		CPURequest:  "500m",
		CPULimit:    "2",
		MemRequest:  "192Mi",
		MemLimit:    "512Mi",
		GoMemLimit:  "256MiB",
		MaxReplicas: 10,
		LogLevel:    "info",
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
	num("replicas", &c.Replicas)
	str("serviceType", &c.ServiceType)
	num("nodePort", &c.NodePort)
	str("cpuRequest", &c.CPURequest)
	str("cpuLimit", &c.CPULimit)
	str("memoryRequest", &c.MemRequest)
	str("memoryLimit", &c.MemLimit)
	str("goMemLimit", &c.GoMemLimit)
	num("maxReplicas", &c.MaxReplicas)
	str("logLevel", &c.LogLevel)
	str("renderDir", &c.RenderDir)
	str("namespace", &c.Namespace)
	return c, c.validate()
}

func (c Config) validate() error {
	if c.Replicas < 1 || c.MaxReplicas < c.Replicas {
		return fmt.Errorf("replicas (%d) must be at least 1 and at most maxReplicas (%d)", c.Replicas, c.MaxReplicas)
	}
	switch c.ServiceType {
	case "NodePort", "LoadBalancer", "ClusterIP":
	default:
		return fmt.Errorf("serviceType %q: want NodePort, LoadBalancer or ClusterIP", c.ServiceType)
	}
	if t := tagOf(c.Image); !c.Build && (t == "latest" || t == "") {
		return fmt.Errorf("image %q: name a version tag, not latest (pods must use what was loaded into the cluster)", c.Image)
	}
	return nil
}
