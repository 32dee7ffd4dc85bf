#!/usr/bin/env bash
# make e2e: readocr on a real minikube, the three ways users deploy it.
#  - A running minikube is used as it is (a laptop, GitHub's runners: medyagh/setup-minikube).
#  - Otherwise, on a host that cannot run minikube's usual drivers or download anything (these
#    development machines), upstream minikube is built and started here with the none driver
#    (hack/offline/minikube; cached in $HOME/.cache/readocr) and deleted afterwards
#    (KEEP=1 leaves it up).
# Then, as the README says: the image is built and `minikube image load`ed, and test/e2e runs
# `kubectl apply -f manifests` (rollout, a job whose worker pod is deleted twice, rolling update
# and pod deletion under load, the autoscaler out and in, a page at the memory cap, KEDA's
# ScaledObject against KEDA's CRD) and `pulumi up` of the minikube stack. The NATS image is
# pulled, or built from the Go module proxy where no registry answers (hack/nats-image.sh).
# E2E_PULUMI=0 skips Pulumi; E2E_RUN=regexp runs only those tests (go test -run). The day-2
# scenarios (docs/day2.md: upgrades, a NATS server lost, KEDA, Gateway API, sizing; about 25
# minutes more) run with E2E_DAY2=1, e.g. `E2E_DAY2=1 E2E_RUN=TestDay2 make e2e`. With
# E2E_K8S_ACCESS=1: language packs (make langpacks: nine packs, ten languages with eng) built and
# loaded for test/e2e/languages_test.go, which adds them to a running deployment, then the
# access-control test with kube-router enforcing NetworkPolicy (hack/offline/addons/kube-router):
# opt-in: it builds nine packs and kube-router, and kube-router's policies then hold for the
# whole cluster (passed on minikube: docs/access-k8s.md). The Ansible
# playbook has its own target (make ansible-e2e).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
version=$(cat VERSION)
image=ghcr.io/readocr/readocr:$version
next=$image-e2e-next
t0=$(date +%s)
ts() { log "[e2e $(since "$t0")s] $*"; }

# A minikube started earlier by hack/offline/minikube counts as running (KEEP=1 left it up).
[ -x "$CACHE/minikube/wrap/minikube" ] && PATH=$CACHE/minikube/wrap:$PATH
if command -v minikube >/dev/null 2>&1 && minikube status >/dev/null 2>&1; then
  ts "using the running minikube ($(minikube profile list -o json 2>/dev/null | grep -o '"Driver":"[a-z]*"' | head -1))"
else
  # shellcheck source=hack/offline/minikube/env.sh
  source hack/offline/minikube/env.sh
  # shellcheck disable=SC2317 # called by the trap
  teardown() { [ -n "${KEEP:-}" ] || { ts "deleting minikube"; hack/offline/minikube/down.sh >/dev/null 2>&1 || true; }; }
  trap teardown EXIT
  ts "starting minikube $MINIKUBE_VERSION (none driver, built here: cached after the first run)"
  hack/offline/minikube/up.sh
  export PATH=$WRAP:$PATH
fi
# The tests reach the cluster through a copy of minikube's kubeconfig written the way CD writes
# its secret (hack/ci/kubeconfig.sh), so that script runs here too.
KUBECONFIG_DATA=$(cat "${KUBECONFIG:-$HOME/.kube/config}")
KUBECONFIG=$(mktemp -d)/config
export KUBECONFIG_DATA KUBECONFIG
hack/ci/kubeconfig.sh
unset KUBECONFIG_DATA

ts "image: make image && minikube image load $image"
make -s image
# A second version to roll out to: another image ID, not only another tag (minikube image load
# of one tag drops the other tags of the same image in the node, as the README's block loads it).
echo "FROM $image" | docker build -q --label readocr.e2e=next -t "$next" - >/dev/null
minikube image load "$image"
minikube image load "$next"
nats=$(hack/nats-image.sh)
ts "NATS: minikube image load $nats"
echo "FROM $nats" | docker build -q --label readocr.e2e=next -t "$nats-e2e-next" - >/dev/null # for the day-2 upgrades
minikube image load "$nats"
minikube image load "$nats-e2e-next"
export E2E_NATS_IMAGE=$nats E2E_NEXT_NATS_IMAGE=$nats-e2e-next
if [ "${E2E_K8S_ACCESS:-0}" = 1 ]; then
  # One build stage for the nine (cached after the first run); each image is a few MB.
  packs="deu fra jpn chi-sim rus spa ita por nld"
  ts "language packs: make langpacks LANGPACKS=\"$packs\", minikube image load"
  make -s langpacks LANGPACKS="$packs" >/dev/null
  for p in $packs; do minikube image load "ghcr.io/readocr/langpack-$p:4.1.0"; done
  export E2E_LANGPACKS=$packs
fi
# KEDA's ScaledObject CRD, from KEDA's module (its source; nothing is built), to check
# manifests/keda against.
keda=$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
export E2E_KEDA_CRD=$keda/config/crd/bases/keda.sh_scaledobjects.yaml
[ -f "$E2E_KEDA_CRD" ] || die "no ScaledObject CRD in KEDA $KEDA_VERSION's module"

export E2E_IMAGE=$image E2E_NEXT_IMAGE=$next
if [ "${E2E_PULUMI:-1}" = 1 ]; then
  ts "Pulumi CLI and Kubernetes provider (cached after the first run)"
  # shellcheck source=hack/pulumi.sh
  source hack/pulumi.sh
  export E2E_PULUMI=1
fi
ts "running test/e2e"
set +e
go test -count=1 -v -timeout "${E2E_TIMEOUT:-45m}" -run "${E2E_RUN:-.}" ./test/e2e 2>&1 | tee "$CACHE/e2e.log" | grep -vE '^\s*$'
rc=${PIPESTATUS[0]}
if [ "${E2E_K8S_ACCESS:-0}" = 1 ]; then
  # Access control last, on its own: it installs kube-router, whose policies then hold for every
  # namespace (test/e2e/access_test.go). The kube-router image is built from the Go module proxy.
  ts "access control with kube-router enforcing NetworkPolicy"
  hack/offline/addons/kube-router/build.sh >/dev/null
  for t in "$CACHE"/kube-router/images/*.tar; do minikube image load "$t"; done
  E2E_ACCESS=1 go test -count=1 -v -timeout 20m -run '^TestAccess$' ./test/e2e 2>&1 | tee "$CACHE/e2e-access.log" | grep -vE '^\s*$'
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
set -e
ts "e2e total (rc=$rc)"
exit "$rc"
