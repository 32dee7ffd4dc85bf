#!/usr/bin/env bash
# Starts upstream minikube on this host without a registry or systemd: builds what it needs
# (build.sh, images.sh; cached), prepares the host (host.sh), runs `minikube start --driver=none
# --container-runtime=containerd` and enables metrics-server. Then the node, the control plane,
# CoreDNS, the storage provisioner and the metrics API are checked. Extra arguments go to
# `minikube start`. Users and tests use $MK/wrap/minikube (on PATH through env.sh's WRAP).
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ "$(id -u)" -eq 0 ] || die "the none driver runs Kubernetes on this host: run as root"
"$HERE/build.sh"
"$HERE/images.sh"
"$HERE/host.sh"
# Pods with dnsPolicy=Default (CoreDNS itself) get this resolv.conf instead of the host's, whose
# nameserver is off the machine: CoreDNS then forwards to this host's own address, where nothing
# listens, so no DNS query leaves (127.0.0.1 would be CoreDNS itself: its loop check aborts).
echo "nameserver ${NODE_IP:?no default route}" >"$MK/resolv.conf"
# With the none driver the cluster's certificates live on the host, in /var/lib/minikube/certs,
# and kubeadm keeps those it finds. Left by a cluster of another minikube home (another user's
# ~/.minikube, or one never deleted before a reboot), they are signed by another CA and kubeadm
# stops ("certificate apiserver-kubelet-client not signed by CA"): remove them unless they are
# this home's.
certs=/var/lib/minikube/certs
if [ -f "$certs/ca.crt" ] && ! cmp -s "$certs/ca.crt" "$HOME/.minikube/ca.crt"; then
  log "removing $certs: left by a cluster with another CA"
  rm -rf "$certs"
fi
start=$(date +%s)
mk start --driver=none --container-runtime=containerd --kubernetes-version="$KUBERNETES_VERSION" \
  --extra-config=kubelet.resolv-conf="$MK/resolv.conf" "$@" >"$LOGS/minikube-start.log" 2>&1 ||
  { tail -40 "$LOGS/minikube-start.log"; die "minikube start failed"; }
log "minikube started in $(since "$start")s"
# The metrics-server addon pins its image by the upstream digest, which a local build cannot
# have: the same name without the digest (--registries too, or the name loses its registry).
mk addons enable metrics-server --images="MetricsServer=metrics-server/metrics-server:$METRICS_SERVER_VERSION" \
  --registries=MetricsServer=registry.k8s.io >"$LOGS/addons.log" 2>&1 || { cat "$LOGS/addons.log"; die "metrics-server addon"; }
k() { "$BIN/kubectl" "$@"; }
k wait --for=condition=Ready node --all --timeout=180s >/dev/null
k -n kube-system wait --for=condition=Ready pod -l 'tier=control-plane' --timeout=300s >/dev/null
k -n kube-system wait --for=condition=Ready pod -l 'k8s-app in (kube-proxy,kube-dns)' --timeout=300s >/dev/null
k -n kube-system wait --for=condition=Ready pod storage-provisioner --timeout=120s >/dev/null ||
  die "the storage provisioner is not ready: $(k -n kube-system logs storage-provisioner --tail=5 2>&1)"
k -n kube-system rollout status deploy/metrics-server --timeout=180s >/dev/null
for _ in $(seq 1 60); do k top nodes >/dev/null 2>&1 && break; sleep 3; done
k top nodes >/dev/null 2>&1 || die "the metrics API does not answer: $(k get apiservice v1beta1.metrics.k8s.io 2>&1 | tail -1)"
log "minikube ready in $(since "$start")s: node, control plane, CoreDNS, storage provisioner, metrics API"
