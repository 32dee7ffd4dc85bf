#!/usr/bin/env bash
# Prints the manifest that installs kube-router (KUBE_ROUTER_VERSION) as a NetworkPolicy agent:
# the ServiceAccount, ClusterRole and ClusterRoleBinding of upstream's
# daemonset/generic-kuberouter-all-features.yaml (its module's), then kube-router.yaml.
#   hack/offline/addons/kube-router/manifest.sh | kubectl apply -f -
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here=$(dirname "$0")
grep -q "image: docker.io/cloudnativelabs/kube-router:$KUBE_ROUTER_VERSION$" "$here/kube-router.yaml" ||
  die "kube-router.yaml does not name kube-router:$KUBE_ROUTER_VERSION"
src=$(module_dir "github.com/cloudnativelabs/kube-router/v2@$KUBE_ROUTER_VERSION")
# Upstream's documents whose kind is one of the three (documents are separated by ---).
awk 'function flush() { if (doc ~ /\nkind: (ServiceAccount|ClusterRole|ClusterRoleBinding)\n/) printf "---%s", doc; doc = "\n" }
  BEGIN { doc = "\n" } /^---/ { flush(); next } { doc = doc $0 "\n" } END { flush() }' \
  "$src/daemonset/generic-kuberouter-all-features.yaml"
echo "---"
cat "$here/kube-router.yaml"
