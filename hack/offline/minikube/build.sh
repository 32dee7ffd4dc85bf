#!/usr/bin/env bash
# Builds, from the Go module proxy, everything the offline minikube needs, into $MK/bin:
#   minikube (MINIKUBE_VERSION) and its storage provisioner (from STORAGE_PROVISIONER_SOURCE);
#   kubeadm, kubelet, kubectl and the control plane (hack/offline/kubernetes, one build);
#   etcd, CoreDNS, crictl, metrics-server and pause.
# The three groups build at once (their module downloads overlap the others' compiling). Each is
# skipped when its binaries are there at the pinned version. Cold: ~25 min on 2 cores; warm: seconds.
set -euo pipefail
source "$(dirname "$0")/env.sh"

minikube_tree() { # a writable copy of the minikube module at $1 (its go.mod has replace directives)
  local dir
  dir=$(module_dir "k8s.io/minikube@$1")
  rm -rf "$MK/src/minikube-$1"
  mkdir -p "$MK/src"
  cp -r "$dir" "$MK/src/minikube-$1"
  chmod -R u+w "$MK/src/minikube-$1"
  echo "$MK/src/minikube-$1"
}

build_minikube() {
  if "$BIN/minikube" version --short 2>/dev/null | grep -qx "$MINIKUBE_VERSION" &&
    [ -f "$BIN/.storage-provisioner-$STORAGE_PROVISIONER_SOURCE" ]; then
    log "minikube $MINIKUBE_VERSION: built"
    return
  fi
  local src v="k8s.io/minikube/pkg/version"
  src=$(minikube_tree "$MINIKUBE_VERSION")
  (cd "$src" && GOFLAGS="$GOFLAGS -mod=mod" CGO_ENABLED=0 go build -trimpath \
    -ldflags="-X $v.version=$MINIKUBE_VERSION -X $v.isoVersion=$MINIKUBE_VERSION -X $v.gitCommitID=$MINIKUBE_VERSION-goproxy -X $v.storageProvisionerVersion=$STORAGE_PROVISIONER_TAG" \
    -o "$BIN/minikube" ./cmd/minikube)
  # Its old golang.org/x/net reaches into the runtime with go:linkname, which Go 1.23+ refuses
  # unless told not to check (-checklinkname=0).
  src=$(minikube_tree "$STORAGE_PROVISIONER_SOURCE")
  (cd "$src" && GOFLAGS="$GOFLAGS -mod=mod" CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -checklinkname=0 -X k8s.io/minikube/pkg/storage.version=$STORAGE_PROVISIONER_TAG" \
    -o "$BIN/storage-provisioner" ./cmd/storage-provisioner)
  rm -rf "$MK/src"
  touch "$BIN/.storage-provisioner-$STORAGE_PROVISIONER_SOURCE"
  log "minikube $("$BIN/minikube" version --short) built"
}

build_kubernetes() {
  local b ok=1
  for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    [ -f "$BIN/.$b-$KUBERNETES_VERSION" ] || ok=0
  done
  if [ $ok = 1 ]; then log "Kubernetes $KUBERNETES_VERSION: built"; return; fi
  OUT=$BIN WORK=$MK/build-kubernetes "$HERE/../kubernetes/build.sh" "$KUBERNETES_VERSION" \
    kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy
  for b in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    touch "$BIN/.$b-$KUBERNETES_VERSION"
  done
}

build_extras() {
  export CGO_ENABLED=0
  local w=$MK/build-extras
  mkdir -p "$w"
  # etcd: the module with main.go replaces its siblings with ../ paths: wrap etcdmain.Main as
  # etcd's own main.go does, against the published server module.
  if [ ! -f "$BIN/.etcd-$ETCD_TAG" ]; then
    mkdir -p "$w/etcd"
    printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >"$w/etcd/main.go"
    printf 'module local.test/etcd\n\ngo 1.23\n' >"$w/etcd/go.mod"
    (cd "$w/etcd" && go get "go.etcd.io/etcd/server/v3@v${ETCD_TAG%-*}" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .)
    touch "$BIN/.etcd-$ETCD_TAG"
  fi
  [ -f "$BIN/.coredns-$COREDNS_VERSION" ] || {
    GOBIN=$BIN go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
    touch "$BIN/.coredns-$COREDNS_VERSION"
  }
  [ -f "$BIN/.crictl-$CRICTL_VERSION" ] || {
    GOBIN=$BIN go install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
      "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
    touch "$BIN/.crictl-$CRICTL_VERSION"
  }
  [ -f "$BIN/.metrics-server-$METRICS_SERVER_VERSION" ] || {
    GOBIN=$BIN go install -trimpath -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
      "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
    touch "$BIN/.metrics-server-$METRICS_SERVER_VERSION"
  }
  [ -f "$BIN/.pause-$PAUSE_TAG" ] || {
    rm -rf "$w/pause"
    cp -r "$HERE/images/pause" "$w/pause"
    chmod -R u+w "$w/pause"
    (cd "$w/pause" && go build -trimpath -ldflags "-s -w" -o "$BIN/pause" .)
    touch "$BIN/.pause-$PAUSE_TAG"
  }
  log "etcd, CoreDNS, crictl, metrics-server, pause: built"
}

start=$(date +%s)
pids=()
for group in minikube kubernetes extras; do
  (renice -n 10 "$BASHPID" >/dev/null && "build_$group") >"$LOGS/build-$group.log" 2>&1 &
  pids+=("$!:$group")
done
failed=""
for p in "${pids[@]}"; do
  wait "${p%%:*}" || { failed="$failed ${p#*:}"; tail -30 "$LOGS/build-${p#*:}.log" >&2; }
done
[ -z "$failed" ] || die "offline minikube build failed:$failed (logs in $LOGS)"
log "offline minikube binaries ready in $(since "$start")s"
