# Settings of the offline minikube (sourced by every script here). Everything built or cached
# lives under $MK ($HOME/.cache/readocr/minikube); minikube itself keeps ~/.minikube.
# shellcheck shell=bash
# shellcheck disable=SC2034 # read by the scripts that source this file
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
source "$HERE/../../lib.sh"
MK=$CACHE/minikube
BIN=$MK/bin       # minikube, kubeadm, kubelet, kubectl, crictl, the images' binaries
IMAGES=$MK/images # the node's images, as docker-archive tarballs
SHIM=$MK/shim     # PATH shims for the minikube process only (host.sh)
WRAP=$MK/wrap     # `minikube` as users type it: the real one with the guards below
LOGS=$MK/logs
mkdir -p "$BIN" "$IMAGES" "$SHIM" "$WRAP" "$LOGS"
export PATH=$BIN:$PATH
export GOFLAGS=-buildvcs=false
# minikube's module fails the checksum database lookup (its go.mod replaces minikube-machine).
export GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}k8s.io/minikube,github.com/minikube-machine
# This host's address on its default route (no packet is sent to find it).
NODE_IP=$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
# Every outbound HTTP(S) attempt of minikube (update check, registry probe, downloads when a
# cache is missing) goes to a closed loopback port and fails at once: nothing leaves the machine.
NOPX=localhost,127.0.0.1,${NODE_IP:-127.0.0.1},10.96.0.0/12,10.244.0.0/16,control-plane.minikube.internal,host.minikube.internal
MK_ENV=(env PATH="$SHIM:$BIN:$PATH" MINIKUBE_WANTUPDATENOTIFICATION=false MINIKUBE_IN_STYLE=false
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
  NO_PROXY="$NOPX" no_proxy="$NOPX")
mk() { "${MK_ENV[@]}" "$BIN/minikube" "$@"; }
