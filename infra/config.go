package main

import (
	"fmt"
	"regexp"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Config is the stack configuration (Pulumi.<stack>.yaml, key prefix "readocr:"). Defaults
// are what manifests/ is rendered with: a minikube of minikube's default size (sizing_test.go).
type Config struct {
	Version     string // the release (VERSION): the app.kubernetes.io/version label
	Image       string // image reference with a version tag or a digest; ignored when Build is set
	Build       bool   // build the image with pulumi-docker (into minikube's Docker: SkipPush)
	MinReplicas int    // the HorizontalPodAutoscaler's floor; the Deployment leaves replicas to it
	MaxReplicas int    // and its ceiling
	ServiceType string // NodePort (minikube), ClusterIP (behind a Gateway) or LoadBalancer
	NodePort    int    // with NodePort; 0 lets Kubernetes choose
	CPURequest  string
	CPULimit    string // also the worker count and GOMAXPROCS
	MemRequest  string
	MemLimit    string // what the service shares out between its workers and requests
	LogLevel    string
	RenderDir   string // write YAML here instead of talking to a cluster (make manifests)
	Namespace   string // "" = the provider's default namespace; manifests/ never carries one

	// Jobs: worker pods run them, NATS JetStream holds them.
	WorkerMinReplicas int    // the worker autoscaler's floor (KEDA scales from zero)
	WorkerMaxReplicas int    // and its ceiling
	WorkerCPURequest  string // less than the API's: under contention, batch yields to requests
	NATSReplicas      int    // 1, or 3 and more for a cluster that survives losing a server
	NATSStorage       string // each NATS server's volume, when its claim is made (nats.go)
	NATSCPURequest    string
	NATSCPULimit      string
	NATSMemRequest    string
	NATSMemLimit      string // GOMEMLIMIT is 80 % of it
	KEDA              bool   // a KEDA ScaledObject scales the workers on the jobs waiting (manifests/keda)

	Gateway Gateway // Gateway API routing from outside the cluster (gateway.go)

	// Language packs mounted into the API and worker pods (langpacks.go): Debian's package
	// names without tesseract-ocr- (deu, chi-sim, script-latn); the service image is unchanged.
	Languages     []string
	LangpackImage string // the packs' image, %s the pack: ghcr.io/readocr/langpack-%s:4.1.0

	// Access control (access.go, netpol.go).
	NetworkPolicies     bool     // the API's and the workers' NetworkPolicies
	MonitoringNamespace string   // where Prometheus runs: the only source of the admin ports
	APIKeys             []APIKey // keys on: the Secret readocr-api-keys (none: the service is open)
	SecretSeed          string   // the stack's secret the keys and NATS's password derive from
	NATSAuth            string   // "": none; generated: Pulumi's Secret; existing: the user's
	NATSTLS             string   // TLS to NATS: "": none; generated: from the seed (natstls.go); existing: the user's Secret
}

// Gateway is how clients outside the cluster reach the Service: an HTTPRoute for Host,
// attached to a Gateway of ours (class Class, an HTTPS listener on Port with the TLS Secret
// TLSSecret) or, with Name, to an existing Gateway. Nothing without Host.
type Gateway struct {
	Host       string // the route's hostname (and our listener's)
	Name       string // attach to this existing Gateway instead of making one
	Namespace  string // the existing Gateway's namespace ("": the route's)
	Class      string // our Gateway's GatewayClass
	Port       int    // our listener's port (Traefik: the port of one of its entry points)
	TLSSecret  string // our listener's certificate (kubernetes.io/tls Secret)
	CertIssuer string // a cert-manager ClusterIssuer that fills TLSSecret ("": none)
	BodyLimit  string // "traefik": the service's body limit as a Traefik Middleware; "none"
}

// Registry is where the release pipeline publishes the image (README, CI/CD); `make image`
// tags its build with the same name, so manifests name the image users also load.
const Registry = "ghcr.io/readocr/readocr"

// DefaultConfig is what manifests/ is rendered from: sized so that a default minikube (2 CPUs,
// 3 GiB, the control plane and metrics-server requesting 0.85 CPU and 370 Mi) schedules every
// pod at the autoscalers' maxima with a rollout's extra pod of each Deployment (sizing_test.go
// adds them up).
func DefaultConfig(version string) Config {
	return Config{
		Version:     version,
		Image:       Registry + ":" + version,
		MinReplicas: 2,
		MaxReplicas: 4,
		ServiceType: "NodePort",
		NodePort:    30400,
		// One OCR worker per pod (the CPU limit). 125m requested: five pods (four and a surge)
		// and the workers fit beside the control plane; a busy pod uses its whole CPU, which the
		// autoscaler measures against the limit (workload.go, cpuTarget).
		CPURequest: "125m",
		CPULimit:   "1",
		// 768 Mi with one worker admits pages up to 16 MP in colour, 24 MP in grayscale
		// (README, Limits). An idle pod uses ~100-150 Mi: 256 Mi requested; the production stack
		// requests its limit in full.
		MemRequest: "256Mi",
		MemLimit:   "768Mi",
		LogLevel:   "info",
		// One worker pod, two under load (KEDA: none while nothing waits). Requesting 50m, a
		// busy worker gets 0.4 of the CPU share of an API pod (125m): asynchronous pages wait,
		// synchronous ones do not.
		WorkerMinReplicas: 1,
		WorkerMaxReplicas: 2,
		WorkerCPURequest:  "50m",
		NATSReplicas:      1,
		NATSStorage:       "1Gi",
		// A queue of small messages: idle at ~15 Mi; the file store's caches grow under load.
		NATSCPURequest: "50m",
		NATSCPULimit:   "500m",
		NATSMemRequest: "64Mi",
		NATSMemLimit:   "256Mi",
		Gateway: Gateway{
			Class: "traefik", Port: 443, TLSSecret: name + "-tls", BodyLimit: "traefik",
		},
		LangpackImage:       LangpackRegistry + "/langpack-%s:" + TessdataVersion,
		NetworkPolicies:     true,
		MonitoringNamespace: "monitoring",
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
	str("natsCpuRequest", &c.NATSCPURequest)
	str("natsCpuLimit", &c.NATSCPULimit)
	str("natsMemoryRequest", &c.NATSMemRequest)
	str("natsMemoryLimit", &c.NATSMemLimit)
	c.KEDA = cfg.GetBool("keda")
	g := &c.Gateway
	str("gatewayHost", &g.Host)
	str("gatewayName", &g.Name)
	str("gatewayNamespace", &g.Namespace)
	str("gatewayClass", &g.Class)
	num("gatewayPort", &g.Port)
	str("gatewayTlsSecret", &g.TLSSecret)
	str("gatewayCertIssuer", &g.CertIssuer)
	str("gatewayBodyLimit", &g.BodyLimit)
	// A YAML list in the stack: pulumi config set --path 'readocr:languages[0]' deu
	if err := cfg.TryObject("languages", &c.Languages); err != nil && cfg.Get("languages") != "" {
		return c, fmt.Errorf("readocr:languages: want a list of packs, e.g. [deu, fra, jpn]: %w", err)
	}
	str("langpackImage", &c.LangpackImage)
	if v, err := cfg.TryBool("networkPolicies"); err == nil {
		c.NetworkPolicies = v
	}
	str("monitoringNamespace", &c.MonitoringNamespace)
	// pulumi config set --path 'readocr:apiKeys[0].id' ops; ... '.scopes[0]' admin
	if err := cfg.TryObject("apiKeys", &c.APIKeys); err != nil && cfg.Get("apiKeys") != "" {
		return c, fmt.Errorf("readocr:apiKeys: want a list of {id, scopes, rate, burst, pages, period}: %w", err)
	}
	str("secretSeed", &c.SecretSeed) // pulumi config set --secret
	str("natsAuth", &c.NATSAuth)
	str("natsTLS", &c.NATSTLS)
	if cfg.Get("ingressHost") != "" {
		return c, fmt.Errorf("readocr:ingressHost: the Ingress was replaced by Gateway API objects; set readocr:gatewayHost (README, Deploy)")
	}
	return c, c.validate()
}

// imageRef is a reference with a tag or a digest, never "latest": pods must run what was
// built, loaded or pushed for this release.
var imageRef = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

func (c Config) validate() error {
	if c.MinReplicas < 1 || c.MaxReplicas < c.MinReplicas {
		return fmt.Errorf("minReplicas (%d) must be at least 1 and at most maxReplicas (%d)", c.MinReplicas, c.MaxReplicas)
	}
	if c.WorkerMinReplicas < 0 || c.WorkerMaxReplicas < max(c.WorkerMinReplicas, 1) {
		return fmt.Errorf("workerMinReplicas (%d) must be at least 0 and at most workerMaxReplicas (%d, at least 1)", c.WorkerMinReplicas, c.WorkerMaxReplicas)
	}
	if c.WorkerMinReplicas == 0 && !c.KEDA {
		return fmt.Errorf("workerMinReplicas 0 needs keda: a CPU autoscaler cannot start a worker for waiting jobs")
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
	if err := c.validateResources(); err != nil {
		return err
	}
	if err := validateLanguages(c); err != nil {
		return err
	}
	if err := validateAccess(c); err != nil {
		return err
	}
	return c.Gateway.validate()
}

// validateResources checks that every quantity reads, and that requests are within limits.
func (c Config) validateResources() error {
	for _, p := range []struct{ what, req, lim string }{
		{"cpuRequest/cpuLimit", c.CPURequest, c.CPULimit},
		{"workerCpuRequest/cpuLimit", c.WorkerCPURequest, c.CPULimit},
		{"natsCpuRequest/natsCpuLimit", c.NATSCPURequest, c.NATSCPULimit},
	} {
		req, err1 := milliCPU(p.req)
		lim, err2 := milliCPU(p.lim)
		if err := firstErr(err1, err2); err != nil {
			return fmt.Errorf("%s: %w", p.what, err)
		}
		if req > lim || lim == 0 {
			return fmt.Errorf("%s: request %s above limit %s", p.what, p.req, p.lim)
		}
	}
	for _, p := range []struct{ what, req, lim string }{
		{"memoryRequest/memoryLimit", c.MemRequest, c.MemLimit},
		{"natsMemoryRequest/natsMemoryLimit", c.NATSMemRequest, c.NATSMemLimit},
		{"natsStorage", c.NATSStorage, c.NATSStorage},
	} {
		req, err1 := bytesOf(p.req)
		lim, err2 := bytesOf(p.lim)
		if err := firstErr(err1, err2); err != nil {
			return fmt.Errorf("%s: %w", p.what, err)
		}
		if req > lim || lim == 0 {
			return fmt.Errorf("%s: request %s above limit %s", p.what, p.req, p.lim)
		}
	}
	return nil
}

func (g Gateway) validate() error {
	if g.Host == "" {
		return nil
	}
	if g.Name == "" && (g.Class == "" || g.Port < 1 || g.Port > 65535 || g.TLSSecret == "") {
		return fmt.Errorf("gateway for %s: our own Gateway needs gatewayClass, gatewayPort and gatewayTlsSecret (or gatewayName to attach to an existing one)", g.Host)
	}
	switch g.BodyLimit {
	case "traefik", "none":
	default:
		return fmt.Errorf("gatewayBodyLimit %q: want traefik (a Buffering Middleware) or none (the controller's own setting)", g.BodyLimit)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
