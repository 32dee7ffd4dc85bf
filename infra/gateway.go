package main

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// maxBodyBytes is the largest request body the service reads: a JSON body carrying the
// largest image in base64 (4/3 of it) with 64 KiB for the other fields; a multipart body is
// smaller (the image and 64 KiB). The Gateway refuses larger bodies before they reach a pod
// (413 from the proxy); the service answers anything smaller itself, with its JSON errors. A
// test holds this to service/internal/httpapi's own limits.
const maxBodyBytes = maxImageBytes*4/3 + 64<<10

const (
	gatewayAPI       = "gateway.networking.k8s.io/v1"
	bodyLimitName    = name + "-body-limit"
	gatewayListener  = "https"
	traefikAPIGroup  = "traefik.io"
	traefikAPI       = traefikAPIGroup + "/v1alpha1"
	certManagerIssue = "cert-manager.io/cluster-issuer"
)

// GatewayResources route clients outside the cluster to the API's Service through the Gateway
// API (ingress-nginx, which refused bodies over 1 MB by default, is retired upstream).
type GatewayResources struct {
	Gateway    pulumi.Resource // ours; nil when attaching to an existing Gateway (Gateway.Name)
	Route      pulumi.Resource // HTTPRoute: the host, every path, to the Service
	BodyLimit  pulumi.Resource // Traefik Middleware (Buffering) the route's ExtensionRef names
	ParentName string
}

func gatewayResources(ctx *pulumi.Context, g Gateway, labels pulumi.StringMap, svc *corev1.Service, opts ...pulumi.ResourceOption) (*GatewayResources, error) {
	r := &GatewayResources{ParentName: g.Name}
	parent := pulumi.Map{"name": pulumi.String(g.Name)}
	if g.Namespace != "" {
		parent["namespace"] = pulumi.String(g.Namespace)
	}
	var err error
	if g.Name == "" {
		r.ParentName = name
		parent = pulumi.Map{"name": pulumi.String(name), "sectionName": pulumi.String(gatewayListener)}
		if r.Gateway, err = ownGateway(ctx, g, labels, opts...); err != nil {
			return nil, err
		}
	}
	rule := pulumi.Map{
		"matches":     pulumi.Array{pulumi.Map{"path": pulumi.Map{"type": pulumi.String("PathPrefix"), "value": pulumi.String("/")}}},
		"backendRefs": pulumi.Array{pulumi.Map{"name": pulumi.String(name), "port": pulumi.Int(port)}},
	}
	if g.BodyLimit == "traefik" {
		// Traefik reads the body before forwarding it and answers 413 past the limit; Traefik has
		// no other body limit, and a route filter is how the Gateway API attaches one.
		if r.BodyLimit, err = apiextensions.NewCustomResource(ctx, bodyLimitName, &apiextensions.CustomResourceArgs{
			ApiVersion: pulumi.String(traefikAPI),
			Kind:       pulumi.String("Middleware"),
			Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String(bodyLimitName), Labels: labels},
			OtherFields: kubernetes.UntypedArgs{
				"spec": pulumi.Map{"buffering": pulumi.Map{"maxRequestBodyBytes": pulumi.Int(maxBodyBytes)}},
			},
		}, opts...); err != nil {
			return nil, err
		}
		rule["filters"] = pulumi.Array{pulumi.Map{
			"type": pulumi.String("ExtensionRef"),
			"extensionRef": pulumi.Map{
				"group": pulumi.String(traefikAPIGroup), "kind": pulumi.String("Middleware"), "name": pulumi.String(bodyLimitName),
			},
		}}
	}
	r.Route, err = apiextensions.NewCustomResource(ctx, name, &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String(gatewayAPI),
		Kind:       pulumi.String("HTTPRoute"),
		Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String(name), Labels: labels},
		OtherFields: kubernetes.UntypedArgs{
			"spec": pulumi.Map{
				"parentRefs": pulumi.Array{parent},
				"hostnames":  pulumi.StringArray{pulumi.String(g.Host)},
				"rules":      pulumi.Array{rule},
			},
		},
	}, append(opts, pulumi.DependsOn(dependencies(svc, r.BodyLimit)))...)
	return r, err
}

// ownGateway is a Gateway with one HTTPS listener for the host, terminating TLS with the
// certificate in g.TLSSecret (which cert-manager fills when g.CertIssuer names an issuer), for
// routes of its own namespace.
func ownGateway(ctx *pulumi.Context, g Gateway, labels pulumi.StringMap, opts ...pulumi.ResourceOption) (pulumi.Resource, error) {
	meta := &metav1.ObjectMetaArgs{Name: pulumi.String(name), Labels: labels}
	if g.CertIssuer != "" {
		meta.Annotations = pulumi.StringMap{certManagerIssue: pulumi.String(g.CertIssuer)}
	}
	return apiextensions.NewCustomResource(ctx, name, &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String(gatewayAPI),
		Kind:       pulumi.String("Gateway"),
		Metadata:   meta,
		OtherFields: kubernetes.UntypedArgs{
			"spec": pulumi.Map{
				"gatewayClassName": pulumi.String(g.Class),
				"listeners": pulumi.Array{pulumi.Map{
					"name":     pulumi.String(gatewayListener),
					"protocol": pulumi.String("HTTPS"),
					"port":     pulumi.Int(g.Port),
					"hostname": pulumi.String(g.Host),
					"tls": pulumi.Map{
						"mode":            pulumi.String("Terminate"),
						"certificateRefs": pulumi.Array{pulumi.Map{"kind": pulumi.String("Secret"), "name": pulumi.String(g.TLSSecret)}},
					},
					"allowedRoutes": pulumi.Map{"namespaces": pulumi.Map{"from": pulumi.String("Same")}},
				}},
			},
		},
	}, opts...)
}

func dependencies(rs ...pulumi.Resource) []pulumi.Resource {
	var out []pulumi.Resource
	for _, r := range rs {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}
