package main

import (
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The API's and the workers' NetworkPolicies (issue 21): the network backs up the URL
// fetcher's SSRF guard, so that a bug in the guard, or a redirect it misjudged, still reaches
// no private address. Ingress: the service port from anywhere (the Service, the Gateway, the
// kubelet's probes); the admin port (metrics, pprof) only from the monitoring namespace.
// Egress: DNS to the cluster's DNS, NATS's client port, and the public internet: everything but
// the ranges below. Enforced only where the network plugin enforces policies (minikube's
// bridge does not: hack/offline/addons/kube-router, test/e2e/access_test.go).

// blockedV4 and blockedV6 are the fetcher's deny list (service/internal/fetch: IANA's
// special-purpose registries, as code.dny.dev/ssrf applies them): private, loopback, link-local
// (169.254.169.254, the cloud metadata service), shared (100.64/10: Alibaba's metadata),
// documentation, benchmarking, multicast and reserved ranges, and 192.0.0.0/24 (Oracle's
// metadata at 192.0.0.192). Not ::ffff:0:0/96 (IPv4-mapped): the API server reads it as an
// IPv4 range and refuses it as an except of ::/0; those addresses never go on the wire.
var blockedV4 = []string{
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
	"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
}

var blockedV6 = []string{
	"::/127", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
	"2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "ff00::/8",
}

// networkPolicy declares the policy of one role's pods.
func (b *builder) networkPolicy(ro role) error {
	if !b.cfg.NetworkPolicies {
		return nil
	}
	tcp := func(p int) *networkingv1.NetworkPolicyPortArgs {
		return &networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(p)}
	}
	ns := func(n string) *metav1.LabelSelectorArgs {
		return &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(n)}}
	}
	public := func(all string, except []string) *networkingv1.NetworkPolicyPeerArgs {
		return &networkingv1.NetworkPolicyPeerArgs{IpBlock: &networkingv1.IPBlockArgs{
			Cidr: pulumi.String(all), Except: pulumi.ToStringArray(except),
		}}
	}
	_, err := networkingv1.NewNetworkPolicy(b.ctx, ro.name, &networkingv1.NetworkPolicyArgs{
		Metadata: b.meta(ro),
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchLabels: b.selector(ro)},
			PolicyTypes: pulumi.StringArray{pulumi.String("Ingress"), pulumi.String("Egress")},
			Ingress: networkingv1.NetworkPolicyIngressRuleArray{
				&networkingv1.NetworkPolicyIngressRuleArgs{Ports: networkingv1.NetworkPolicyPortArray{tcp(port)}},
				&networkingv1.NetworkPolicyIngressRuleArgs{
					From:  networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: ns(b.cfg.MonitoringNamespace)}},
					Ports: networkingv1.NetworkPolicyPortArray{tcp(adminPort)},
				},
			},
			Egress: networkingv1.NetworkPolicyEgressRuleArray{
				// The cluster's DNS (CoreDNS's pods, labelled k8s-app=kube-dns as kube-dns's were).
				&networkingv1.NetworkPolicyEgressRuleArgs{
					To: networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{
						NamespaceSelector: ns("kube-system"),
						PodSelector:       &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"k8s-app": pulumi.String("kube-dns")}},
					}},
					Ports: networkingv1.NetworkPolicyPortArray{
						&networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("UDP"), Port: pulumi.Int(53)}, tcp(53),
					},
				},
				&networkingv1.NetworkPolicyEgressRuleArgs{
					To:    networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(natsSelector)}}},
					Ports: networkingv1.NetworkPolicyPortArray{tcp(natsClientPort)},
				},
				// Image URLs and job callbacks: any port of a public address.
				&networkingv1.NetworkPolicyEgressRuleArgs{
					To: networkingv1.NetworkPolicyPeerArray{public("0.0.0.0/0", blockedV4), public("::/0", blockedV6)},
				},
			},
		},
	}, b.opts...)
	return err
}
