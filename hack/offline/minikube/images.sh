#!/usr/bin/env bash
# Makes every image the minikube node needs, under the exact names kubeadm and minikube use,
# with the local Docker engine and without pulling anything: FROM scratch with the binaries of
# build.sh (kube-proxy on a Debian base with iptables, made with debootstrap). Each is saved as a
# docker-archive in $MK/images for `ctr images import` (standing in for minikube's preload).
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$REPO_ROOT/hack/docker-engine.sh"
base=readocr-offline/kube-proxy-base:bookworm
if ! docker image inspect "$base" >/dev/null 2>&1; then
  apt_install debootstrap
  root=$(mktemp -d /tmp/kube-proxy-base.XXXXXX)
  nice -n 10 debootstrap --variant=minbase --include=iptables,conntrack,ebtables,ipset,kmod bookworm "$root" \
    http://deb.debian.org/debian >"$LOGS/debootstrap.log" 2>&1 || { tail -20 "$LOGS/debootstrap.log"; exit 1; }
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*
  tar -C "$root" -c . | docker import - "$base" >/dev/null
  rm -rf "$root"
fi
ctx=$(mktemp -d /tmp/mk-images.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
# image NAME:TAG FROM BINARY DEST [ENTRYPOINT-JSON] [USER]
image() {
  local ref=$1 from=$2 bin=$3 dest=$4 ep=${5:-} user=${6:-} tar
  tar=$IMAGES/$(echo "$ref" | tr '/:' '__').tar
  if [ -s "$tar" ] && [ "$tar" -nt "$BIN/$bin" ] && docker image inspect "$ref" >/dev/null 2>&1; then return; fi
  rm -rf "${ctx:?}"/*
  cp "$BIN/$bin" "$ctx/$bin"
  {
    echo "FROM $from"
    echo "COPY $bin $dest"
    echo "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    [ -n "$user" ] && echo "USER $user"
    [ -n "$ep" ] && echo "ENTRYPOINT $ep"
  } >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$ref" "$ctx" >/dev/null 2>&1
  docker save -o "$tar" "$ref"
  log "made $ref"
}
r=registry.k8s.io
for c in kube-apiserver kube-controller-manager kube-scheduler; do image "$r/$c:$KUBERNETES_VERSION" scratch "$c" "/usr/local/bin/$c"; done
image "$r/kube-proxy:$KUBERNETES_VERSION" "$base" kube-proxy /usr/local/bin/kube-proxy
image "$r/etcd:$ETCD_TAG" scratch etcd /usr/local/bin/etcd
image "$r/coredns/coredns:$COREDNS_VERSION" scratch coredns /coredns '["/coredns"]'
image "$r/pause:$PAUSE_TAG" scratch pause /pause '["/pause"]' 65535:65535
image "gcr.io/k8s-minikube/storage-provisioner:$STORAGE_PROVISIONER_TAG" scratch storage-provisioner /storage-provisioner '["/storage-provisioner"]'
image "$r/metrics-server/metrics-server:$METRICS_SERVER_VERSION" scratch metrics-server /metrics-server '["/metrics-server"]' 65534:65534
log "node images in $IMAGES"
