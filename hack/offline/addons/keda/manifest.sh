#!/usr/bin/env bash
# Prints the manifest that installs KEDA_VERSION on a cluster: upstream's config/minimal (CRDs,
# namespace keda, RBAC, the operator, the metrics API server and its APIService; no admission
# webhooks) rendered with kustomize (`kubectl kustomize`), with the images build.sh makes and
# imagePullPolicy IfNotPresent (upstream's Always would ask a registry). The operator makes the
# certificates itself (--enable-cert-rotation=true: Secret kedaorg-certs, the APIService's caBundle).
#   hack/offline/addons/keda/manifest.sh | kubectl apply --server-side -f -
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
kubectl=${KUBECTL:-$CACHE/minikube/bin/kubectl}
[ -x "$kubectl" ] || kubectl=kubectl
src=$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")
tmp=$(mktemp -d /tmp/keda-manifest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# A copy: kustomize refuses files outside its root, and the overlay sits beside the base.
cp -r "$src/config" "$tmp/config"
mkdir "$tmp/offline"
pull='[{"op": "replace", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "IfNotPresent"}]'
cat >"$tmp/offline/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../config/minimal
images:
- name: ghcr.io/kedacore/keda
  newTag: "${KEDA_VERSION#v}"
- name: ghcr.io/kedacore/keda-metrics-apiserver
  newTag: "${KEDA_VERSION#v}"
patches:
- target: {kind: Deployment, name: keda-operator}
  patch: '$pull'
- target: {kind: Deployment, name: keda-metrics-apiserver}
  patch: '$pull'
YAML
"$kubectl" kustomize "$tmp/offline"
