#!/usr/bin/env bash
# Writes the kubeconfig given in $KUBECONFIG_DATA (a GitHub environment secret) to
# ~/.kube/config with owner-only permissions, and checks that the cluster answers.
set -euo pipefail
[ -n "${KUBECONFIG_DATA:-}" ] || { echo "KUBECONFIG secret is not set for this environment" >&2; exit 1; }
mkdir -p "$HOME/.kube"
umask 077
printf '%s\n' "$KUBECONFIG_DATA" >"$HOME/.kube/config"
kubectl version --request-timeout=10s >/dev/null
