package main

import (
	"fmt"
	"strings"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// NATSImage is the official nats-server image of the version go.mod embeds (a test holds the
// two together): the jobs code is tested against this server. Offline machines build it from
// the Go module proxy under this name (hack/nats-image.sh).
// renovate: datasource=docker depName=nats
const NATSImage = "nats:2.15.2"

const (
	natsName       = name + "-nats"
	natsHeadless   = natsName + "-headless"
	natsClientPort = 4222
	natsRoutePort  = 6222
	natsMonitor    = 8222
	// kedaNamespace is where KEDA's operator, which reads the monitoring port, runs.
	kedaNamespace = "keda"
)

// Lame duck: on SIGTERM's pre-stop hook the server stops accepting clients, hands its
// JetStream leaderships to the other servers, waits natsLameDuckGrace (so that servers
// stopped together do not send clients to each other), then closes its clients spread over
// the rest of natsLameDuckDuration (at most one a second). The pod's grace period covers it.
const (
	natsLameDuckDuration = 30 // seconds
	natsLameDuckGrace    = 10
	natsGraceSeconds     = natsLameDuckDuration + 30 // and JetStream's shutdown, with a margin
	natsPidDir           = "/var/run/nats"
)

// natsKnobs are two settings of the NATS servers read here rather than in Config.
//   - readocr:natsSpread: how a cluster's servers keep apart. natsSpreadRequired (the default)
//     puts each on a node of its own; natsSpreadPreferred lets them share one when there is no
//     other, for a test of a 3-server cluster on a one-node minikube only (test/e2e,
//     TestDay2NATSServerLost): there, losing the node loses every server.
//   - readocr:natsImage: the server image when it is not NATSImage as named (a registry mirror,
//     or the e2e's retagged image to roll out to).
type natsKnobs struct{ spread, image string }

const (
	natsSpreadRequired  = "required"
	natsSpreadPreferred = "preferred"
)

func natsKnobsConfig(ctx *pulumi.Context) (natsKnobs, error) {
	c := config.New(ctx, "")
	k := natsKnobs{spread: c.Get("natsSpread"), image: c.Get("natsImage")}
	switch k.spread {
	case "":
		k.spread = natsSpreadRequired
	case natsSpreadRequired, natsSpreadPreferred:
	default:
		return k, fmt.Errorf("readocr:natsSpread %q: want %q (the default) or %q (a test cluster on one node)", k.spread, natsSpreadRequired, natsSpreadPreferred)
	}
	if k.image == "" {
		k.image = NATSImage
	} else if last := k.image[strings.LastIndex(k.image, "/")+1:]; !imageRef.MatchString(k.image) || !strings.ContainsAny(last, ":@") {
		return k, fmt.Errorf("readocr:natsImage %q: want an image with a tag or a digest", k.image)
	}
	return k, nil
}

// NATS is the JetStream cluster that holds jobs.
type NATS struct {
	ConfigMap     *corev1.ConfigMap
	Service       *corev1.Service // clients and monitoring
	Headless      *corev1.Service // the servers' stable names, for routes
	StatefulSet   *appsv1.StatefulSet
	PDB           *policyv1.PodDisruptionBudget
	NetworkPolicy *networkingv1.NetworkPolicy
}

// natsURL is what readocr pods connect to.
func natsURL() string { return fmt.Sprintf("nats://%s:%d", natsName, natsClientPort) }

// natsConfig is nats-server's configuration: JetStream on the volume, and with more than one
// server a cluster whose routes are the StatefulSet's stable names.
//
// No max_file_store: nats-server then sets its limit from the disk it finds at start (75 % of
// what is free plus what its streams already hold, server/jetstream.go), so the limit follows
// the claim as it really is. A size computed from the configuration did not: a claim is never
// resized by changing the template, and a larger setting set a limit beyond the disk.
func natsConfig(cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: $POD_NAME\nport: %d\nhttp_port: %d\n", natsClientPort, natsMonitor)
	fmt.Fprintf(&b, "pid_file: %s/nats.pid\nlame_duck_duration: %ds\nlame_duck_grace_period: %ds\n",
		natsPidDir, natsLameDuckDuration, natsLameDuckGrace)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: /data\n  max_memory_store: 64MB\n}\n")
	b.WriteString(natsAuthConfig(cfg))
	b.WriteString(natsTLSConfig(cfg))
	if cfg.NATSReplicas > 1 {
		var routes []string
		for i := range cfg.NATSReplicas {
			routes = append(routes, fmt.Sprintf("    nats://%s-%d.%s:%d", natsName, i, natsHeadless, natsRoutePort))
		}
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  port: %d\n  routes: [\n%s\n  ]\n}\n", name, natsRoutePort, strings.Join(routes, "\n"))
	}
	return b.String()
}

// natsLabels are NATS's labels; natsSelector the part that never changes (selectors, and the
// volume claim template, which cannot change either).
var natsSelector = map[string]string{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": natsName}

func natsLabels(withVersion bool) pulumi.StringMap {
	m := pulumi.StringMap{
		"app.kubernetes.io/component": pulumi.String("broker"),
		"app.kubernetes.io/part-of":   pulumi.String(name),
	}
	for k, v := range natsSelector {
		m[k] = pulumi.String(v)
	}
	if withVersion {
		m["app.kubernetes.io/version"] = pulumi.String(strings.TrimPrefix(NATSImage, "nats:"))
	}
	return m
}

func natsResources(ctx *pulumi.Context, cfg Config, opts ...pulumi.ResourceOption) (*NATS, error) {
	selector := pulumi.ToStringMap(natsSelector)
	meta := func(n string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(n), Labels: natsLabels(true)}
	}
	n := &NATS{}
	var err error
	conf := natsConfig(cfg)
	if n.ConfigMap, err = corev1.NewConfigMap(ctx, natsName, &corev1.ConfigMapArgs{
		Metadata: meta(natsName),
		Data:     pulumi.StringMap{"nats.conf": pulumi.String(conf)},
	}, opts...); err != nil {
		return nil, err
	}

	port := func(n string, p int) *corev1.ServicePortArgs {
		return &corev1.ServicePortArgs{Name: pulumi.String(n), Port: pulumi.Int(p), TargetPort: pulumi.String(n), Protocol: pulumi.String("TCP")}
	}
	if n.Service, err = corev1.NewService(ctx, natsName, &corev1.ServiceArgs{
		Metadata: meta(natsName),
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: selector,
			Ports:    corev1.ServicePortArray{port("client", natsClientPort), port("monitor", natsMonitor)},
		},
	}, opts...); err != nil {
		return nil, err
	}
	// Servers find each other before they are ready: a cluster forms only once they do.
	if n.Headless, err = corev1.NewService(ctx, natsHeadless, &corev1.ServiceArgs{
		Metadata: meta(natsHeadless),
		Spec: &corev1.ServiceSpecArgs{
			ClusterIP:                pulumi.String("None"),
			PublishNotReadyAddresses: pulumi.Bool(true),
			Selector:                 selector,
			Ports:                    corev1.ServicePortArray{port("client", natsClientPort), port("cluster", natsRoutePort), port("monitor", natsMonitor)},
		},
	}, opts...); err != nil {
		return nil, err
	}

	knobs, err := natsKnobsConfig(ctx)
	if err != nil {
		return nil, err
	}
	if n.StatefulSet, err = natsServers(ctx, cfg, conf, knobs, opts...); err != nil {
		return nil, err
	}

	// A drain takes one server at a time: a cluster of three keeps its majority.
	if n.PDB, err = policyv1.NewPodDisruptionBudget(ctx, natsName, &policyv1.PodDisruptionBudgetArgs{
		Metadata: meta(natsName),
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable: pulumi.Int(1),
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: selector},
		},
	}, opts...); err != nil {
		return nil, err
	}
	if n.NetworkPolicy, err = natsNetworkPolicy(ctx, meta(natsName), selector, cfg.MonitoringNamespace, opts...); err != nil {
		return nil, err
	}
	return n, nil
}

// natsNetworkPolicy lets only readocr's own pods (API, workers, the other NATS servers) reach
// NATS, and KEDA's operator and Prometheus (the monitoring namespace) read the monitoring
// port. The jobs carry users' documents.
func natsNetworkPolicy(ctx *pulumi.Context, meta *metav1.ObjectMetaArgs, selector pulumi.StringMap, monitoringNS string, opts ...pulumi.ResourceOption) (*networkingv1.NetworkPolicy, error) {
	tcp := func(p int) *networkingv1.NetworkPolicyPortArgs {
		return &networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(p)}
	}
	return networkingv1.NewNetworkPolicy(ctx, natsName, &networkingv1.NetworkPolicyArgs{
		Metadata: meta,
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchLabels: selector},
			PolicyTypes: pulumi.StringArray{pulumi.String("Ingress")},
			Ingress: networkingv1.NetworkPolicyIngressRuleArray{
				&networkingv1.NetworkPolicyIngressRuleArgs{
					From: networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{
						PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String(name)}},
					}},
					Ports: networkingv1.NetworkPolicyPortArray{tcp(natsClientPort), tcp(natsRoutePort)},
				},
				&networkingv1.NetworkPolicyIngressRuleArgs{
					From: networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{
						NamespaceSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(kedaNamespace)}},
					}, &networkingv1.NetworkPolicyPeerArgs{ // and Prometheus
						NamespaceSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(monitoringNS)}},
					}},
					Ports: networkingv1.NetworkPolicyPortArray{tcp(natsMonitor)},
				},
			},
		},
	}, opts...)
}
