#!/usr/bin/env bash
# Prints a kubeconfig for the readocr-preview ServiceAccount (hack/ci/preview-rbac.yaml) in
# NAMESPACE: the cluster and its CA from the current context, a token the API server issues for
# the account (`kubectl create token`, bound to it; DURATION, default 720h: the API server may
# grant less), the namespace as the context's. Store it as the secret KUBECONFIG of the
# environment staging-preview, and make a new one before it expires.
#   hack/ci/preview-kubeconfig.sh NAMESPACE [DURATION] > preview.kubeconfig
set -euo pipefail
ns=${1:?usage: preview-kubeconfig.sh NAMESPACE [DURATION]}
duration=${2:-720h}
kubectl get serviceaccount readocr-preview -n "$ns" >/dev/null
server=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
if [ -z "$ca" ]; then
  ca_file=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  ca=$(base64 -w0 <"${ca_file:?the current context has no cluster CA}")
fi
token=$(kubectl create token readocr-preview -n "$ns" --duration "$duration")
cat <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: readocr
    cluster:
      server: $server
      certificate-authority-data: $ca
users:
  - name: readocr-preview
    user:
      token: $token
contexts:
  - name: readocr-preview
    context:
      cluster: readocr
      user: readocr-preview
      namespace: $ns
current-context: readocr-preview
KUBECONFIG
