#!/usr/bin/env bash
# Proves on the running offline minikube (hack/offline/minikube/up.sh) that kube-router enforces
# NetworkPolicy beside minikube's bridge CNI. In namespace np-check: servers "server" and "other"
# (CoreDNS on TCP 8053) and clients (bash's /dev/tcp): "allowed" (role=client), "denied" (no
# label) and "limited" (role=client, egress only to the pod range except server's address).
# Before kube-router runs, the policies are there but nothing enforces them: "denied" connects
# (the check would fail); then kube-router is installed and each connection must go as the
# policies say. KEEP=1 leaves the namespace.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
ns=np-check
img=$("$here/build.sh")
load_images kube-router
k delete ns "$ns" --ignore-not-found --wait >/dev/null
k create ns "$ns" >/dev/null
pod() { # NAME IMAGE LABELS ARGS...
  local name=$1 image=$2 labels=$3
  shift 3
  k -n "$ns" run "$name" --image="$image" --image-pull-policy=IfNotPresent --labels="$labels" --restart=Never "$@" >/dev/null
}
dns=registry.k8s.io/coredns/coredns:$COREDNS_VERSION
pod server "$dns" app=server -- -dns.port=8053
pod other "$dns" app=other -- -dns.port=8053
pod allowed "$img" role=client --command -- sleep infinity
pod denied "$img" role=none --command -- sleep infinity
pod limited "$img" role=client,egress=limited --command -- sleep infinity
k -n "$ns" wait --for=condition=Ready pod --all --timeout=120s >/dev/null
server=$(k -n "$ns" get pod server -o jsonpath='{.status.podIP}')
other=$(k -n "$ns" get pod other -o jsonpath='{.status.podIP}')
k -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-from-clients}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress]
  ingress:
    - from: [{podSelector: {matchLabels: {role: client}}}]
      ports: [{protocol: TCP, port: 8053}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: limited-egress}
spec:
  podSelector: {matchLabels: {egress: limited}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 10.244.0.0/16, except: ["$server/32"]}}]
YAML
# can FROM IP: "yes" when FROM opens a TCP connection to IP:8053 within 3 s.
can() { if k -n "$ns" exec "$1" -- timeout 3 bash -c "</dev/tcp/$2/8053" 2>/dev/null; then echo yes; else echo no; fi; }
if k -n kube-system get ds kube-router >/dev/null 2>&1; then
  log "kube-router already runs: the check without it is skipped"
else
  [ "$(can denied "$server")" = yes ] || die "without kube-router, denied cannot reach server: something else enforces policies"
  log "without kube-router: denied -> server connects (policies not enforced)"
  "$here/manifest.sh" | k apply -f - >/dev/null
  k -n kube-system rollout status ds/kube-router --timeout=120s >/dev/null
fi
for _ in $(seq 1 30); do [ "$(can denied "$server")" = no ] && break; sleep 2; done
fail=0
expect() { # FROM TO-NAME TO-IP WANT
  local got
  got=$(can "$1" "$3")
  if [ "$got" = "$4" ]; then log "ok: $1 -> $2: $got"; else log "FAIL: $1 -> $2: $got, want $4"; fail=1; fi
}
expect allowed server "$server" yes
expect denied server "$server" no
expect denied other "$other" yes
expect limited server "$server" no
expect limited other "$other" yes
[ -n "${KEEP:-}" ] || k delete ns "$ns" --wait=false >/dev/null
[ $fail = 0 ] || die "kube-router does not enforce the policies as written"
log "kube-router enforces NetworkPolicy (ingress from pods, egress to an ipBlock with except)"
