#!/usr/bin/env bash
# Writes the kubeconfig given in $KUBECONFIG_DATA (a GitHub environment secret) to $KUBECONFIG
# (default ~/.kube/config) with owner-only permissions, and checks that the cluster answers.
# hack/e2e.sh runs the e2e through a kubeconfig written by this script.
set -euo pipefail
[ -n "${KUBECONFIG_DATA:-}" ] || { echo "KUBECONFIG secret is not set for this environment" >&2; exit 1; }
dest=${KUBECONFIG:-$HOME/.kube/config}
mkdir -p "$(dirname "$dest")"
umask 077
printf '%s\n' "$KUBECONFIG_DATA" >"$dest"
KUBECONFIG=$dest kubectl version --request-timeout=10s >/dev/null
echo "kubeconfig written to $dest"
