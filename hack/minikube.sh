#!/usr/bin/env bash
# make minikube: readocr on the minikube that runs now, in one command.
#  1. the image: built inside minikube's Docker engine when minikube runs on Docker (the
#     docker driver's default), otherwise built here and `minikube image load`ed; the same for
#     NATS's (pulled, or built where no registry answers: hack/nats-image.sh);
#  2. kubectl apply -f manifests (into $NAMESPACE, default "default"), rollout status;
#  3. the URL (minikube service readocr --url), and a page read through it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ns=${NAMESPACE:-default}
image=ghcr.io/readocr/readocr:$(cat VERSION)
command -v minikube >/dev/null || die "minikube is not installed: https://minikube.sigs.k8s.io/docs/start/"
minikube status >/dev/null 2>&1 || die "minikube is not running: minikube start --cpus 2 --memory 4g"
kubectl() { if command -v kubectl >/dev/null; then command kubectl "$@"; else minikube kubectl -- "$@"; fi; }

runtime=$(minikube profile list -o json 2>/dev/null | python3 -c 'import json,sys; p=json.load(sys.stdin)["valid"][0]["Config"]; print(p["KubernetesConfig"]["ContainerRuntime"], p["Driver"])' 2>/dev/null || echo "unknown unknown")
if [ "${runtime% *}" = docker ] && [ "${runtime#* }" != none ]; then
  log "building $image inside minikube's Docker engine"
  eval "$(minikube docker-env)"
  make -s image
  hack/nats-image.sh >/dev/null
else
  log "building $image here and loading it into minikube ($runtime)"
  make -s image
  minikube image load "$image"
  minikube image load "$(hack/nats-image.sh)"
fi
[ "$ns" = default ] || kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n "$ns" -f manifests
for w in statefulset/readocr-nats deploy/readocr deploy/readocr-worker; do
  kubectl rollout status -n "$ns" "$w" --timeout=300s
done
url=$(minikube service readocr -n "$ns" --url | head -1)
for _ in $(seq 1 30); do
  if text=$(curl -fsS --noproxy '*' -m 30 "$url/read_ocr" -F image=@testdata/ocr/images/phototest.tif); then break; fi
  sleep 1
done
log "read_ocr of testdata/ocr/images/phototest.tif: ${text:0:80}..."
echo "$url"
