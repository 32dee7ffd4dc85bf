#!/usr/bin/env bash
# kube-score (github.com/zegl/kube-score, pinned in hack/tools/go.mod, built from the Go module
# proxy) on the rendered manifests: every CRITICAL finding must be one the docs answer
# (docs/kubernetes.md, "kube-score", linked from the README's Day 2); any other fails. Warnings are printed, not judged.
#   hack/kube-score.sh [FILE...]   (default: manifests/*.yaml manifests/keda manifests/gateway)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
# Answered in docs/kubernetes.md: IfNotPresent is what runs an image loaded into the cluster (minikube
# image load) and releases are immutable tags or digests; the API's and the workers' pods get
# their NetworkPolicies with the NetworkPolicy work (NATS has one).
answered='ImagePullPolicy is not set to Always|The pod does not have a matching NetworkPolicy'
if [ $# -eq 0 ]; then set -- manifests/*.yaml manifests/keda/*.yaml manifests/gateway/*.yaml; fi
out=$(go tool -modfile=hack/tools/go.mod kube-score score --output-format ci "$@" || true)
echo "$out" | grep -E '^\[(CRITICAL|WARNING)\]' || true
unanswered=$(echo "$out" | grep '^\[CRITICAL\]' | grep -vE "$answered" || true)
[ -z "$unanswered" ] || die "kube-score: critical findings the README does not answer:
$unanswered"
log "kube-score: $(echo "$out" | grep -c '^\[CRITICAL\]') critical findings, each answered in the README; $(echo "$out" | grep -c '^\[WARNING\]') warnings"
