#!/usr/bin/env bash
# kube-router (KUBE_ROUTER_VERSION) from the Go module proxy, as the image
# docker.io/cloudnativelabs/kube-router:<version>, run here as a NetworkPolicy agent only
# (beside minikube's bridge CNI: kube-router.yaml). Its policy controller runs iptables-save/
# -restore and ipset, so the image is the Debian base of minikube's kube-proxy image (iptables,
# ipset, conntrack; made by hack/offline/minikube/images.sh) plus the binary, where upstream's
# is Alpine with the same tools. Prints the image name.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
addon_init kube-router
v=$KUBE_ROUTER_VERSION
base=readocr-offline/kube-proxy-base:bookworm
if ! built "kube-router-$v"; then
  src=$(module_dir "github.com/cloudnativelabs/kube-router/v2@$v")
  mkdir -p "$OUT/image"
  x="-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$v -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=goproxy"
  (cd "$src" && go build -trimpath -ldflags "-s -w $x" -o "$OUT/image/kube-router" ./cmd/kube-router)
  touch "$OUT/.kube-router-$v"
fi
docker image inspect "$base" >/dev/null 2>&1 || die "no $base: run hack/offline/minikube/images.sh (up.sh does) first"
dockerfile "$OUT/image" "FROM $base" 'COPY kube-router /usr/local/bin/kube-router' 'ENTRYPOINT ["/usr/local/bin/kube-router"]'
image "docker.io/cloudnativelabs/kube-router:$v" "$OUT/image"
