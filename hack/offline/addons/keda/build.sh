#!/usr/bin/env bash
# KEDA (KEDA_VERSION) from the Go module proxy: the operator and its metrics API server (the
# external.metrics.k8s.io adapter), one `go build` so that the scalers they share compile once;
# the admission webhooks are left out (optional). Images under the official names, laid out as
# upstream's (distroless/static:nonroot: user 65532, CA certificates):
#   ghcr.io/kedacore/keda:<version>  ghcr.io/kedacore/keda-metrics-apiserver:<version>
# Prints the two names. Cold: see hack/offline/addons/README.md; warm: seconds.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
addon_init keda
v=$KEDA_VERSION
if ! built "keda-$v"; then
  src=$(module_dir "github.com/kedacore/keda/v2@$v")
  mkdir -p "$OUT/keda" "$OUT/keda-metrics-apiserver"
  x="-X github.com/kedacore/keda/v2/version.Version=${v#v} -X github.com/kedacore/keda/v2/version.GitCommit=$v-goproxy"
  # Built in the module cache's read-only copy: its go.sum is complete and its one replace is a
  # module version, so nothing needs writing.
  (cd "$src" && go build -trimpath -ldflags "-s -w $x" -o "$OUT/build/" ./cmd/operator ./cmd/adapter)
  mv "$OUT/build/operator" "$OUT/keda/keda"
  mv "$OUT/build/adapter" "$OUT/keda-metrics-apiserver/keda-adapter"
  rmdir "$OUT/build"
  touch "$OUT/.keda-$v"
fi
for d in keda keda-metrics-apiserver; do
  bin=$(cd "$OUT/$d" && ls keda*)
  cp -p /etc/ssl/certs/ca-certificates.crt "$OUT/$d/"
  dockerfile "$OUT/$d" 'FROM scratch' "COPY $bin /$bin" 'COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' \
    'USER 65532:65532' "ENTRYPOINT [\"/$bin\"]"
  image "ghcr.io/kedacore/$d:${v#v}" "$OUT/$d"
done
