#!/usr/bin/env bash
# make e2e: readocr on a real Kubernetes.
#  - a running minikube is used as it is (images go in with `minikube image load`);
#  - otherwise a single-node Kubernetes v1.33 is built from source and started here
#    (hack/k8s, binaries cached in $HOME/.cache/local-k8s) and torn down at the end
#    (KEEP=1 leaves it up: source hack/k8s/env.sh; kubectl get pods -A).
# Then test/e2e: kubectl apply -f manifests, rollout + pod deletion under load, pulumi up/destroy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=$(cat VERSION)
image=readocr:$version
next=readocr:$version-e2e-next
T0=$(date +%s)
ts() { echo "[e2e $(( $(date +%s) - T0 ))s] $*"; }

make -s image TAG="$version"
docker tag "$image" "$next"   # a second version to roll out to

if command -v minikube >/dev/null 2>&1 && minikube status >/dev/null 2>&1; then
  ts "using the running minikube"
  minikube image load "$image" "$next"
  export E2E_NODE_IP=$(minikube ip) E2E_CLUSTERIP=0
else
  source hack/k8s/env.sh
  teardown() { [ -n "${KEEP:-}" ] || { ts "tearing the cluster down"; hack/k8s/90-down.sh --purge >/dev/null 2>&1 || true; }; }
  trap teardown EXIT
  ts "building Kubernetes $KV (cached after the first run)"
  hack/k8s/00-prereqs.sh >/dev/null
  hack/k8s/10-build.sh | tail -1
  hack/k8s/20-images.sh >/dev/null
  hack/k8s/30-certs.sh >/dev/null
  up0=$(date +%s)
  hack/k8s/40-up.sh >/dev/null
  ts "cluster up in $(( $(date +%s) - up0 ))s: $(kubectl get nodes --no-headers)"
  hack/k8s/load-image.sh "$image" "$next" >/dev/null
  export E2E_NODE_IP=$NODE_IP E2E_CLUSTERIP=1
  # The tests talk to the cluster through a kubeconfig written the way CD writes it.
  KUBECONFIG_DATA=$(cat "$KUBECONFIG") KUBECONFIG=$(mktemp -d)/config
  export KUBECONFIG_DATA KUBECONFIG
  hack/ci/kubeconfig.sh
  unset KUBECONFIG_DATA
fi

export E2E_IMAGE=$image E2E_NEXT_IMAGE=$next
if [ "${E2E_PULUMI:-1}" = 1 ]; then
  ts "Pulumi CLI and Kubernetes provider (cached after the first run)"
  source hack/pulumi/tools.sh
  export E2E_PULUMI=1
fi
ts "running test/e2e"
go test -count=1 -v -timeout 30m ./test/e2e 2>&1 | tee /tmp/readocr-e2e.log | grep -vE '^\s*$'
rc=${PIPESTATUS[0]}
ts "e2e total (rc=$rc)"
exit "$rc"
