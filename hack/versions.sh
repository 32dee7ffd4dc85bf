# Pinned versions of what the scripts under hack/ fetch or build. Sourced by hack/lib.sh.
# shellcheck shell=bash
# shellcheck disable=SC2034 # read by the scripts that source this file

# Kubernetes, as minikube runs it here and as the offline build makes it (k8s.io/kubernetes on the
# Go module proxy: v1.32.x cannot be built from it, a staging module is missing; v1.33.13 can).
# renovate: datasource=go depName=k8s.io/kubernetes
KUBERNETES_VERSION=v1.33.13
# minikube (k8s.io/minikube on the Go module proxy).
# renovate: datasource=go depName=k8s.io/minikube
MINIKUBE_VERSION=v1.37.0
# The storage provisioner is built from an older minikube: its leader election uses the
# "endpoints" lock, which client-go 0.27 removed ("endpoints lock is removed, migrate to
# endpointsleases": a crash loop; client-go 0.24 already refuses it); minikube v1.25.2 is the
# last built with client-go 0.23.
# renovate: datasource=go depName=k8s.io/minikube
STORAGE_PROVISIONER_SOURCE=v1.25.2
# renovate: datasource=docker depName=gcr.io/k8s-minikube/storage-provisioner
STORAGE_PROVISIONER_TAG=v5 # the tag minikube's addon names
# renovate: datasource=go depName=sigs.k8s.io/cri-tools
CRICTL_VERSION=v1.34.0     # v1.33.x is not served by the proxy; v1.34.0 is
# renovate: datasource=go depName=sigs.k8s.io/metrics-server
METRICS_SERVER_VERSION=v0.8.0
# etcd, CoreDNS and pause: the tags kubeadm of KUBERNETES_VERSION lists (these are its v1.33.13 answers).
# renovate: datasource=docker depName=registry.k8s.io/etcd
ETCD_TAG=3.5.24-0
# renovate: datasource=docker depName=registry.k8s.io/coredns/coredns
COREDNS_VERSION=v1.12.0
# renovate: datasource=docker depName=registry.k8s.io/pause
PAUSE_TAG=3.10

# Pulumi, built from the Go module proxy where it cannot be downloaded.
# renovate: datasource=go depName=github.com/pulumi/pulumi/pkg/v3
PULUMI_VERSION=v3.274.1
# renovate: datasource=go depName=github.com/pulumi/pulumi-kubernetes/provider/v4
PULUMI_K8S_PROVIDER=v4.0.0-20260115033456-f47bc2d6f199 # the only provider/v4 on the proxy here
# renovate: datasource=go depName=github.com/pulumi/pulumi-kubernetes/sdk/v4
PULUMI_K8S_SDK=v4.25.0
# renovate: datasource=go depName=pulumi-kubernetes-provider-reports
PULUMI_K8S_PROVIDER_REPORTS=4.25.0-dev.f47bc2d6

# Tools for `make lint` outside Go (hack/tools/go.mod pins the Go ones).
# renovate: datasource=npm depName=dockerfilelint
DOCKERFILELINT_VERSION=1.8.0

# KEDA: manifests/keda is checked against this release's ScaledObject CRD (make e2e).
# renovate: datasource=go depName=github.com/kedacore/keda/v2
KEDA_VERSION=v2.21.0

# Add-ons built by hack/offline/addons (cluster users would install them from a registry or Helm).
# Traefik: v3.7.x replaces go-http-auth with a fork commit the proxy does not serve (403);
# v3.6.12's fork commit is served, so it is the newest Traefik that builds here.
# renovate: datasource=go depName=github.com/traefik/traefik/v3
TRAEFIK_VERSION=v3.6.12
# Gateway API CRDs: the version TRAEFIK_VERSION's go.mod requires (its provider's client).
# renovate: datasource=go depName=sigs.k8s.io/gateway-api
GATEWAY_API_VERSION=v1.4.0
# kube-router as a NetworkPolicy agent: the only v2 version the proxy serves (security flaws are
# reported for it; kube-network-policies and kindnet queue packets with nftables' queue
# expression, which this machine's kernel lacks: CONFIG_NFT_QUEUE is not set).
# renovate: datasource=go depName=github.com/cloudnativelabs/kube-router/v2
KUBE_ROUTER_VERSION=v2.1.0
