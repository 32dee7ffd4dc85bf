#!/usr/bin/env bash
# Prints the manifest that installs Traefik (TRAEFIK_VERSION) as the Gateway API controller:
# the Gateway API standard CRDs (GATEWAY_API_VERSION's module), Traefik's CRDs (its module's
# docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml), traefik.yaml.
# With `crds`, only the CRDs; with `controller`, only traefik.yaml (its GatewayClass needs the
# CRDs established first: one apply of both fails with "no matches for kind GatewayClass").
#   hack/offline/addons/traefik/manifest.sh crds | kubectl apply --server-side -f -
#   kubectl wait --for=condition=Established crd/gatewayclasses.gateway.networking.k8s.io
#   hack/offline/addons/traefik/manifest.sh controller | kubectl apply --server-side -f -
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here=$(dirname "$0")
grep -q "image: traefik:$TRAEFIK_VERSION$" "$here/traefik.yaml" || die "traefik.yaml does not name traefik:$TRAEFIK_VERSION"
gw=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
tr=$(module_dir "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")
crds=("$gw"/config/crd/standard/*.yaml "$tr/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml")
case "${1:-all}" in
  crds) files=("${crds[@]}") ;;
  controller) files=("$here/traefik.yaml") ;;
  all) files=("${crds[@]}" "$here/traefik.yaml") ;;
  *) die "usage: $0 [crds|controller|all]" ;;
esac
for f in "${files[@]}"; do
  echo "---"
  cat "$f"
done
