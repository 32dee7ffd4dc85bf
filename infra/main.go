// Command infra is the Pulumi program of readocr: it builds the image (optionally) and declares
// the Kubernetes workload. manifests/ is this program's static export (make manifests).
//
//	pulumi stack init minikube && pulumi up          # see README, "Deploy"
package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg, err := loadConfig(ctx, version())
		if err != nil {
			return err
		}
		return program(ctx, cfg)
	})
}

// version is the release in the VERSION file at the repository root (the image tag).
func version() string {
	if b, err := os.ReadFile(filepath.Join(repoRoot(), "VERSION")); err == nil {
		return strings.TrimSpace(string(b))
	}
	return "dev"
}

// repoRoot is the repository root: the working directory (pulumi runs the program there, where
// Pulumi.yaml is) or its parent (go test runs in infra/).
func repoRoot() string {
	if _, err := os.Stat("Pulumi.yaml"); err == nil {
		return "."
	}
	return ".."
}

func program(ctx *pulumi.Context, cfg Config) error {
	var opts []pulumi.ResourceOption
	providerArgs := &kubernetes.ProviderArgs{}
	useProvider := false
	if cfg.RenderDir != "" {
		providerArgs.RenderYamlToDirectory = pulumi.String(cfg.RenderDir)
		useProvider = true
	}
	if cfg.Namespace != "" {
		providerArgs.Namespace = pulumi.String(cfg.Namespace)
		useProvider = true
	}
	if useProvider {
		p, err := kubernetes.NewProvider(ctx, "k8s", providerArgs)
		if err != nil {
			return err
		}
		opts = append(opts, pulumi.Provider(p))
	}

	image := pulumi.String(cfg.Image).ToStringOutput()
	if cfg.Build {
		built, err := buildImage(ctx, cfg, repoRoot())
		if err != nil {
			return err
		}
		image = built
	}
	w, err := Workload(ctx, cfg, image, opts...)
	if err != nil {
		return err
	}
	ctx.Export("image", image)
	ctx.Export("deployment", w.Deployment.Metadata.Name())
	ctx.Export("workerDeployment", w.Worker.Metadata.Name())
	ctx.Export("nats", pulumi.String(natsURL()))
	ctx.Export("service", w.Service.Metadata.Name())
	ctx.Export("nodePort", w.Service.Spec.Ports().Index(pulumi.Int(0)).NodePort())
	ctx.Export("url", serviceURL(w, cfg))
	return nil
}

// serviceURL is how to reach the service: the NodePort on a node's address (minikube ip),
// or the load balancer's address.
func serviceURL(w *Resources, cfg Config) pulumi.StringOutput {
	if g := cfg.Gateway; g.Host != "" {
		if g.Name != "" {
			return pulumi.Sprintf("https://%s (HTTPRoute on Gateway %s)", g.Host, g.Name)
		}
		return pulumi.Sprintf("https://%s:%d (Gateway %s, class %s)", g.Host, g.Port, name, g.Class)
	}
	switch cfg.ServiceType {
	case "NodePort":
		return pulumi.Sprintf("http://<node-ip>:%d (minikube: kubectl port-forward svc/readocr 4000:4000)", w.Service.Spec.Ports().Index(pulumi.Int(0)).NodePort().Elem())
	case "LoadBalancer":
		ing := w.Service.Status.LoadBalancer().Ingress().Index(pulumi.Int(0))
		return pulumi.Sprintf("http://%s:4000", pulumi.All(ing.Ip(), ing.Hostname()).ApplyT(func(v []any) string {
			if ip, _ := v[0].(*string); ip != nil && *ip != "" {
				return *ip
			}
			if h, _ := v[1].(*string); h != nil {
				return *h
			}
			return "<pending>"
		}).(pulumi.StringOutput))
	}
	return pulumi.Sprintf("http://readocr.<namespace>.svc:4000 (in cluster)")
}
