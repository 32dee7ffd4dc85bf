#!/usr/bin/env bash
# make minikube: readocr on the minikube that runs now, in one command.
#  1. the image: built inside minikube's Docker engine when minikube runs on Docker (the
#     docker driver's default), otherwise built here and `minikube image load`ed; the same for
#     NATS's (pulled, or built where no registry answers: hack/nats-image.sh);
#  2. kubectl apply -f manifests (into $NAMESPACE, default "default"), rollout status;
#  3. a page read through the Service over `kubectl port-forward` (every driver: on the docker
#     driver of macOS and Windows the node's IP cannot be reached, and `minikube service --url`
#     holds a tunnel open and never returns), then how to reach it: never blocks.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ns=${NAMESPACE:-default}
image=ghcr.io/readocr/readocr:$(cat VERSION)
command -v minikube >/dev/null || die "minikube is not installed: https://minikube.sigs.k8s.io/docs/start/"
minikube status >/dev/null 2>&1 || die "minikube is not running: minikube start --cpus 2 --memory 4g"
if command -v kubectl >/dev/null; then kc=(kubectl); else kc=(minikube kubectl --); fi
kubectl() { "${kc[@]}" "$@"; }

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
# A port of this machine for the check; the forward ends with the script.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${kc[@]}" port-forward -n "$ns" svc/readocr "$port:4000" >/dev/null &
forward=$!
# minikube kubectl runs kubectl as its child: both go.
trap 'pkill -P "$forward" 2>/dev/null; kill "$forward" 2>/dev/null || true' EXIT
text=
for _ in $(seq 1 30); do
  if text=$(curl -fsS --noproxy '*' -m 30 "http://127.0.0.1:$port/read_ocr" -F image=@testdata/ocr/images/phototest.tif); then break; fi
  sleep 1
done
[ -n "$text" ] || die "no answer from the Service through kubectl port-forward"
log "read_ocr of testdata/ocr/images/phototest.tif: ${text:0:80}..."
nsflag=$([ "$ns" = default ] || echo " -n $ns")
cat <<EOF
readocr runs. To use it, on any minikube driver:
  kubectl port-forward$nsflag svc/readocr 4000:4000     # then http://localhost:4000
or, where minikube's node IP is reachable (Linux drivers), its NodePort:
  http://$(minikube ip):30400
EOF
