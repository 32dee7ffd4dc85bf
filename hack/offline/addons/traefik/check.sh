#!/usr/bin/env bash
# Proves on the running offline minikube (hack/offline/minikube/up.sh) what the project needs of
# Traefik as Gateway API controller: a Gateway with an HTTPS listener whose certificate is a
# Secret, an HTTPRoute to a Service, and a request body limit set on the route through an
# ExtensionRef filter naming a Buffering Middleware (maxRequestBodyBytes: 20 MiB). The backend
# is Traefik's own image answering /ping. Checked with curl on the NodePort (30443): the
# route answers over TLS with the Secret's certificate, 20 MiB passes the gateway, 20 MiB + 1
# byte gets 413. KEEP=1 leaves the namespace gw-check.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
ns=gw-check host=ocr.example.test limit=$((20 * 1024 * 1024))
img=$("$here/build.sh")
load_images traefik
"$here/manifest.sh" | k apply --server-side --force-conflicts -f - >/dev/null
k -n traefik rollout status deploy/traefik --timeout=120s >/dev/null
k delete ns "$ns" --ignore-not-found --wait >/dev/null
k create ns "$ns" >/dev/null
tmp=$(mktemp -d /tmp/gw-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$host" -addext "subjectAltName=DNS:$host" \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
k -n "$ns" create secret tls ocr-tls --cert="$tmp/tls.crt" --key="$tmp/tls.key" >/dev/null
k -n "$ns" create deployment backend --image="$img" -- /usr/local/bin/traefik \
  --entryPoints.web.address=:8080 --ping=true --ping.entryPoint=web >/dev/null
k -n "$ns" expose deployment backend --port=80 --target-port=8080 >/dev/null
k -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: body-limit}
spec:
  buffering: {maxRequestBodyBytes: $limit}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: traefik
  listeners:
    - name: https
      protocol: HTTPS
      port: 8443
      hostname: $host
      tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: ocr-tls}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend}
spec:
  parentRefs: [{name: gw}]
  hostnames: [$host]
  rules:
    - filters: [{type: ExtensionRef, extensionRef: {group: traefik.io, kind: Middleware, name: body-limit}}]
      backendRefs: [{name: backend, port: 80}]
YAML
k -n "$ns" rollout status deploy/backend --timeout=120s >/dev/null
k -n "$ns" wait --for=condition=Programmed gateway/gw --timeout=60s >/dev/null
url=https://$host:30443
ip=${NODE_IP:-$(ip -4 -o route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')}
c() { curl -sS --max-time 20 --resolve "$host:30443:$ip" --cacert "$tmp/tls.crt" "$@"; }
for _ in $(seq 1 30); do [ "$(c -o /dev/null -w '%{http_code}' "$url/ping" 2>/dev/null)" = 200 ] && break; sleep 2; done
fail=0
expect() { # WHAT GOT WANT
  if [ "$2" = "$3" ]; then log "ok: $1: $2"; else log "FAIL: $1: $2, want $3"; fail=1; fi
}
# --cacert: the answer must come with the Secret's certificate for $host, or curl fails.
expect "GET /ping over TLS" "$(c "$url/ping")" OK
head -c "$limit" /dev/zero >"$tmp/at-limit"
head -c "$((limit + 1))" /dev/zero >"$tmp/over-limit"
# The backend answers POST /ping with 404 (ping is GET/HEAD): any answer but 413 passed the gateway.
expect "POST 20 MiB (passes the limit, the backend answers)" \
  "$(c -o /dev/null -w '%{http_code}' --data-binary @"$tmp/at-limit" "$url/ping")" 404
expect "POST 20 MiB + 1 byte" "$(c -o /dev/null -w '%{http_code}' --data-binary @"$tmp/over-limit" "$url/ping")" 413
[ -n "${KEEP:-}" ] || k delete ns "$ns" --wait=false >/dev/null
[ $fail = 0 ] || die "Traefik does not serve the route as configured"
log "Traefik serves an HTTPRoute over TLS on NodePort 30443 with a 20 MiB body limit"
