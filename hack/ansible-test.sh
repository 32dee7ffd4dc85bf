#!/usr/bin/env bash
# make test-ansible: lint the playbook, then converge it for real on a Debian 12 target
# container with systemd as PID 1 (what Molecule would do), twice, requiring changed=0 the
# second time, and verify the host. Downloads come from a local HTTP server serving the real
# kubectl binary with its real checksum (no internet here). Starting minikube needs images from
# a registry: those stages run in check mode here and for real in CI on GitHub's runners.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/ansible"
name=readocr-ansible-target
work=$(mktemp -d /tmp/readocr-ansible.XXXXXX)
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "--- lint"
yamllint --strict -c "$root/.yamllint.yaml" .
ansible-lint --offline --profile production site.yml
ansible-playbook site.yml --syntax-check -i inventory/hosts.example.yml

echo "--- target: Debian 12 with systemd"
"$root/hack/docker-engine.sh"
"$root/hack/offline/base-images.sh" debian:bookworm-slim
docker build -q -t "$name:bookworm" -f "$root/test/ansible/Dockerfile.target" "$root/test/ansible" >/dev/null
docker rm -f "$name" >/dev/null 2>&1 || true
docker run -d --name "$name" --hostname "$name" \
  --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE --security-opt seccomp=unconfined \
  --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
  --add-host host.docker.internal:host-gateway "$name:bookworm" >/dev/null
for _ in $(seq 1 60); do
  state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 1
done
echo "systemd: $state"

echo "--- artifacts on a local server"
kubectl_bin=${KUBECTL_BIN:-$(command -v kubectl || true)}
[ -x "$HOME/.cache/readocr/minikube/bin/kubectl" ] && kubectl_bin=$HOME/.cache/readocr/minikube/bin/kubectl
[ -n "$kubectl_bin" ] || { echo "no kubectl binary to serve" >&2; exit 1; }
kubectl_version=$("$kubectl_bin" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
mkdir -p "$work/www"
cp "$kubectl_bin" "$work/www/kubectl"
(cd "$work/www" && sha256sum kubectl | cut -d' ' -f1 > kubectl.sha256)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 0.0.0.0 --directory "$work/www" >/dev/null 2>&1 &
srv=$!
sleep 1

cat > "$work/inventory.yml" <<INV
all:
  children:
    minikube_hosts:
      hosts:
        $name:
          ansible_connection: community.docker.docker
          kubectl_version: "$kubectl_version"
          kubectl_url: "http://host.docker.internal:$port/kubectl"
          kube_tools_install_minikube: false
INV

# shellcheck disable=SC2120 # extra ansible-playbook arguments, when a caller has some
converge() { ANSIBLE_STDOUT_CALLBACK=default ansible-playbook -i "$work/inventory.yml" site.yml --tags docker,tools "$@"; }
echo "--- converge"
converge >"$work/first.log" 2>&1 || { cat "$work/first.log"; exit 1; }
tail -3 "$work/first.log"
echo "--- converge again: nothing may change"
converge >"$work/second.log" 2>&1 || { cat "$work/second.log"; exit 1; }
tail -3 "$work/second.log"
grep -qE "$name +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0" "$work/second.log" \
  || { echo "second run was not idempotent"; exit 1; }

echo "--- check mode for the stages that need a registry (minikube start, image, deploy)"
ANSIBLE_STDOUT_CALLBACK=default ansible-playbook -i "$work/inventory.yml" site.yml --tags minikube,deploy --check \
  -e readocr_image_source=archive -e readocr_image_archive=/dev/null >"$work/check.log" 2>&1 \
  || { cat "$work/check.log"; exit 1; }
tail -3 "$work/check.log"

echo "--- verify the host"
docker exec "$name" docker info --format 'docker engine {{.ServerVersion}} ({{.Driver}})'
got=$(docker exec "$name" kubectl version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')
[ "$got" = "$kubectl_version" ] || { echo "kubectl $got, want $kubectl_version"; exit 1; }
want_sum=$(cat "$work/www/kubectl.sha256")
have_sum=$(docker exec "$name" sha256sum /usr/local/bin/kubectl | cut -d' ' -f1)
[ "$want_sum" = "$have_sum" ] || { echo "kubectl checksum $have_sum, want $want_sum"; exit 1; }
docker exec "$name" id -nG minikube | grep -qw docker || { echo "minikube user not in the docker group"; exit 1; }
echo "kubectl $got ($have_sum), user minikube in group docker"
echo "ansible: passed"
