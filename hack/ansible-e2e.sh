#!/usr/bin/env bash
# make ansible-e2e: the playbook for real, as ansible/README.md has users run it (its block
# marked `test: ansible`, through hack/readme-block.sh), against this host reached as a remote
# one: over SSH (an sshd of this script's own on loopback) as a non-root user with sudo
# (readocr-e2e, created here), twice, the second run reporting changed=0, ending with the
# play's smoke request. minikube runs with the none driver (these hosts cannot run the docker
# driver's privileged container): the host is prepared as hack/offline/minikube does (binaries,
# images, containerd), and the playbook downloads kubectl and minikube, checksums and all, from a
# local server of those binaries, starts minikube, builds the image with hack/image.sh and loads
# it (the default path), applies the manifests into its own namespace and reads a page. Every
# stage runs for real: base, docker, tools, minikube, deploy.
set -euo pipefail
source "$(dirname "$0")/offline/minikube/env.sh"
cd "$REPO_ROOT"
t0=$(date +%s)
work=$(mktemp -d /tmp/readocr-ansible-e2e.XXXXXX)
user=readocr-e2e
cleanup() {
  [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null
  [ -n "${sshd:-}" ] && kill "$sshd" 2>/dev/null
  rm -f "/etc/sudoers.d/$user" "/home/$user/.ssh/authorized_keys"
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

log "SSH: $user (non-root, sudo) through an sshd on loopback"
need=()
for pkg in openssh-server sudo rsync; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
usermod -p '*' "$user" # no password, and not locked: sshd (without PAM) lets a locked account in with no key
echo "$user ALL=(ALL) NOPASSWD: ALL" >"/etc/sudoers.d/$user"
chmod 0440 "/etc/sudoers.d/$user"
ssh-keygen -q -t ed25519 -N '' -C "$user" -f "$work/id"
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
install -d -m 0700 -o "$user" -g "$user" "/home/$user/.ssh"
install -m 0600 -o "$user" -g "$user" "$work/id.pub" "/home/$user/.ssh/authorized_keys"
ssh_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p /run/sshd
cat >"$work/sshd_config" <<CFG
ListenAddress 127.0.0.1:$ssh_port
HostKey $work/host_key
PidFile $work/sshd.pid
AllowUsers $user
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
Subsystem sftp internal-sftp
CFG
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
sshd=$!
for _ in $(seq 1 20); do
  ssh-keyscan -p "$ssh_port" -t ed25519 127.0.0.1 2>/dev/null | sed "s/^127.0.0.1/[127.0.0.1]:$ssh_port/" >"$work/known_hosts" || true
  [ -s "$work/known_hosts" ] && break
  sleep 0.5
done
ssh -i "$work/id" -p "$ssh_port" -o UserKnownHostsFile="$work/known_hosts" -o BatchMode=yes "$user@127.0.0.1" \
  'echo "logged in as $(id -un), sudo as $(sudo -n id -un)"'
cat >"$work/inventory.yml" <<INV
all:
  children:
    minikube_hosts:
      hosts:
        e2e-host:
          ansible_host: 127.0.0.1
          ansible_port: $ssh_port
          ansible_user: $user
          ansible_ssh_private_key_file: $work/id
          ansible_ssh_common_args: -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes
          ansible_python_interpreter: /usr/bin/python3
INV

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
  "readocr_extra_images": [{"image": "$nats", "archive": "$work/nats.tar"}],
  "readocr_namespace": "readocr-ansible",
}, open(sys.argv[1], "w"), indent=1)
PY

# The README's block, as written but for the variables above (test/readme/substitutions.sed);
# the inventory is this host over SSH.
block=$(hack/readme-block.sh ansible/README.md ansible)
export ANSIBLE_INVENTORY=$work/inventory.yml READOCR_TEST_ANSIBLE_VARS=$work/vars.json ANSIBLE_STDOUT_CALLBACK=default
printf 'the block (ansible/README.md):\n%s\n' "$block"
for run in first second; do
  log "ansible/README.md's block: $run run"
  start=$(date +%s)
  bash -euo pipefail -c "$block" >"$work/$run.log" 2>&1 || { cat "$work/$run.log"; die "the $run run failed"; }
  grep -E '^(TASK|changed|ok|skipping|PLAY RECAP)|Service URL|readocr: http' "$work/$run.log" | grep -vE '^ok:|^skipping:' | tail -4
  recap=$(grep -E '^e2e-host +: ' "$work/$run.log")
  log "$run run: $recap ($(since "$start")s)"
  cp "$work/$run.log" "$CACHE/ansible-$run.log"
done
echo "$recap" | grep -qE 'changed=0 +unreachable=0 +failed=0' || {
  grep -B3 '^changed:' "$work/second.log" | head -40
  die "the second run changed something"
}
grep -q "$user" "$work/sshd.log" || die "sshd saw no login: the play did not come over SSH"
log "ansible-e2e passed in $(since "$t0")s: every stage for real over SSH as $user (sudo), the second run changed=0"
