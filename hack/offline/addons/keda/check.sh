#!/usr/bin/env bash
# Installs KEDA on the running offline minikube (hack/offline/minikube/up.sh) from the images of
# build.sh and the manifest of manifest.sh, and checks that the operator and the metrics API
# server are Ready and that the external metrics API (served by KEDA's adapter through the
# APIService v1beta1.external.metrics.k8s.io) answers.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
"$here/build.sh" >/dev/null
load_images keda
"$here/manifest.sh" | k apply --server-side --force-conflicts -f - >/dev/null
k -n keda rollout status deploy/keda-operator --timeout=180s >/dev/null
k -n keda rollout status deploy/keda-metrics-apiserver --timeout=180s >/dev/null
log "keda-operator and keda-metrics-apiserver Ready"
k wait --for=condition=Available apiservice/v1beta1.external.metrics.k8s.io --timeout=180s >/dev/null ||
  die "external metrics API unavailable: $(k get apiservice v1beta1.external.metrics.k8s.io -o jsonpath='{.status.conditions[0].message}')"
out=$(k get --raw /apis/external.metrics.k8s.io/v1beta1)
echo "$out" | grep -q '"groupVersion":"external.metrics.k8s.io/v1beta1"' || die "unexpected answer: $out"
log "external.metrics.k8s.io/v1beta1 answers: $out"
