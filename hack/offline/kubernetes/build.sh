#!/usr/bin/env bash
# Builds Kubernetes binaries from the Go module proxy (k8s.io/kubernetes has no usable module
# zip for `go install`: its go.mod replaces the staging modules with ./staging paths, which the
# zip lacks). A wrapper module in $WORK requires k8s.io/kubernetes and maps every staging module
# to its published v0.<minor>.<patch> (gen-gomod.sh). One `go build` makes all the binaries, so
# the libraries they share compile once.
#   WORK=dir OUT=dir build.sh VERSION BINARY...   (cold ~6 min on 2 cores, 3 GB of build cache)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kv=${1:?usage: build.sh VERSION BINARY...}
shift
bins=("$@")
: "${WORK:?WORK is not set}" "${OUT:?OUT is not set}"
mkdir -p "$WORK" "$OUT"
cd "$WORK"
if ! grep -q "k8s.io/kubernetes $kv" go.mod 2>/dev/null; then
  "$here/gen-gomod.sh" "$kv"
  pkgs=("${bins[@]/#/k8s.io/kubernetes/cmd/}")
  go get "${pkgs[@]/%/@$kv}"
fi
minor=$(echo "$kv" | cut -d. -f2)
v="-X k8s.io/component-base/version.gitVersion=$kv -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
v="$v -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
v="$v ${v//component-base\/version/client-go\/pkg\/version}"
CGO_ENABLED=0 go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "-s -w $v" -o "$OUT/" "${bins[@]/#/k8s.io/kubernetes/cmd/}"
echo "Kubernetes $kv: ${bins[*]} in $OUT"
