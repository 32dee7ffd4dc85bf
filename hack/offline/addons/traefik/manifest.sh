#!/usr/bin/env bash
# Prints the manifest that installs Traefik (TRAEFIK_VERSION) as the Gateway API controller:
# the Gateway API standard CRDs (GATEWAY_API_VERSION's module), Traefik's CRDs (its module's
# docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml), traefik.yaml.
#   hack/offline/addons/traefik/manifest.sh | kubectl apply --server-side -f -
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here=$(dirname "$0")
grep -q "image: traefik:$TRAEFIK_VERSION$" "$here/traefik.yaml" || die "traefik.yaml does not name traefik:$TRAEFIK_VERSION"
gw=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
tr=$(module_dir "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")
for f in "$gw"/config/crd/standard/*.yaml "$tr/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" "$here/traefik.yaml"; do
  echo "---"
  cat "$f"
done
