#!/usr/bin/env bash
# make ansible-e2e: the playbook for real against this host, twice (the second run must report
# changed=0), ending with its smoke request. minikube runs with the none driver (these hosts
# cannot run the docker driver's privileged container): the host is prepared as
# hack/offline/minikube does (binaries, images, containerd), and the playbook downloads kubectl
# and minikube, checksums and all, from a local server of those binaries, starts minikube,
# loads the image from a `docker save` archive, applies the manifests into its own namespace and
# reads a page. Every stage runs for real: docker, tools, minikube, deploy.
set -euo pipefail
source "$(dirname "$0")/offline/minikube/env.sh"
cd "$REPO_ROOT"
t0=$(date +%s)
work=$(mktemp -d /tmp/readocr-ansible-e2e.XXXXXX)
cleanup() {
  [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null
  # An absolute path: the trap runs after `cd ansible`.
  [ -n "${KEEP:-}" ] || "$REPO_ROOT/hack/offline/minikube/down.sh" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
command -v ansible-playbook >/dev/null || die "ansible-playbook is missing (make ansible-deps)"
if mk status >/dev/null 2>&1; then hack/offline/minikube/down.sh >/dev/null; fi

log "host: minikube's binaries, images and containerd (cached)"
hack/offline/minikube/build.sh
hack/offline/minikube/images.sh
hack/offline/minikube/host.sh
echo "nameserver ${NODE_IP:?}" >"$MK/resolv.conf"
version=$(cat VERSION)
make -s image
docker save -o "$work/readocr.tar" "ghcr.io/readocr/readocr:$version"
nats=$(hack/nats-image.sh) # this host cannot pull it: the playbook loads it from an archive
docker save -o "$work/nats.tar" "$nats"

log "kubectl and minikube on a local server, with their checksums"
mkdir -p "$work/www"
for b in kubectl minikube; do
  cp "$BIN/$b" "$work/www/$b"
  (cd "$work/www" && sha256sum "$b" | cut -d' ' -f1 >"$b.sha256")
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
srv=$!
sleep 1

python3 - "$work/vars.json" <<PY
import json, sys
env = {"PATH": "$SHIM:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "MINIKUBE_WANTUPDATENOTIFICATION": "false",
       "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "$NOPX",
       "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": "$NOPX"}
json.dump({
  "docker_source": "distro",
  # dockerd runs already (hack/docker-engine.sh): this host has no init system that may start it
  # (Debian's init script sets ulimits that root here is not allowed to).
  "docker_manage_service": False,
  "kubectl_version": "$KUBERNETES_VERSION", "minikube_version": "$MINIKUBE_VERSION",
  "kubectl_url": "http://127.0.0.1:$port/kubectl", "minikube_url": "http://127.0.0.1:$port/minikube",
  "minikube_driver": "none", "minikube_container_runtime": "containerd",
  "minikube_start_args": ["--extra-config=kubelet.resolv-conf=$MK/resolv.conf"],
  "minikube_addon_args": {"metrics-server": ["--images=MetricsServer=metrics-server/metrics-server:$METRICS_SERVER_VERSION",
                                             "--registries=MetricsServer=registry.k8s.io"]},
  "minikube_environment": env,
  "readocr_image_source": "archive", "readocr_image_archive": "$work/readocr.tar",
  "readocr_extra_images": [{"image": "$nats", "archive": "$work/nats.tar"}],
  "readocr_namespace": "readocr-ansible",
}, open(sys.argv[1], "w"), indent=1)
PY

cd ansible
# shellcheck disable=SC2120 # extra ansible-playbook arguments, when a caller has some
play() { ANSIBLE_STDOUT_CALLBACK=default ansible-playbook -i inventory/local.yml site.yml -e "@$work/vars.json" "$@"; }
for run in first second; do
  log "ansible-playbook site.yml: $run run"
  start=$(date +%s)
  play >"$work/$run.log" 2>&1 || { cat "$work/$run.log"; die "the $run run failed"; }
  grep -E '^(TASK|changed|ok|skipping|PLAY RECAP)|Service URL|readocr: http' "$work/$run.log" | grep -vE '^ok:|^skipping:' | tail -4
  recap=$(grep -E '^localhost +: ' "$work/$run.log")
  log "$run run: $recap ($(since "$start")s)"
  cp "$work/$run.log" "$CACHE/ansible-$run.log"
done
echo "$recap" | grep -qE 'changed=0 +unreachable=0 +failed=0' || {
  grep -B3 '^changed:' "$work/second.log" | head -40
  die "the second run changed something"
}
log "ansible-e2e passed in $(since "$t0")s: every stage for real, the second run changed=0"
