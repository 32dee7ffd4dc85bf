#!/usr/bin/env bash
# make test-ansible: lint the playbook, then converge it for real on a Debian 12 target
# container with systemd as PID 1 (what Molecule would do), reached as a remote host is: over
# SSH, as a non-root user ("deploy") who becomes root with sudo, and the minikube user from
# there (which needs acl, installed first by the base role). Twice, requiring changed=0 the
# second time, then the host is verified. Downloads come from a local HTTP server serving the
# real kubectl binary with its real checksum (no internet here). Starting minikube needs images
# from a registry: those stages run in check mode here (make ansible-e2e runs them for real).
# Docker's apt key check is run on a key made here: kept when its fingerprint is the one
# expected, removed and the play failed when it is not.
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
  --add-host host.docker.internal:host-gateway -p 127.0.0.1::22 "$name:bookworm" >/dev/null
for _ in $(seq 1 60); do
  state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 1
done
echo "systemd: $state"

echo "--- SSH as deploy (non-root, sudo)"
ssh-keygen -q -t ed25519 -N '' -C readocr-ansible-test -f "$work/id"
docker cp "$work/id.pub" "$name:/home/deploy/.ssh/authorized_keys"
docker exec "$name" sh -c 'chown deploy:deploy /home/deploy/.ssh/authorized_keys && chmod 0600 /home/deploy/.ssh/authorized_keys'
ssh_port=$(docker port "$name" 22/tcp | head -1 | sed 's/.*://')
for _ in $(seq 1 30); do
  ssh-keyscan -p "$ssh_port" -t ed25519 127.0.0.1 2>/dev/null | sed "s/^127.0.0.1/[127.0.0.1]:$ssh_port/" >"$work/known_hosts" || true
  [ -s "$work/known_hosts" ] && break
  sleep 1
done
ssh_opts=(-i "$work/id" -p "$ssh_port" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes)
ssh "${ssh_opts[@]}" deploy@127.0.0.1 'echo "logged in as $(id -un), sudo as $(sudo -n id -un)"'
for pkg in acl gpg; do
  if docker exec "$name" dpkg -s "$pkg" >/dev/null 2>&1; then echo "the target has $pkg already: it would hide what the play must install" >&2; exit 1; fi
done

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
          ansible_host: 127.0.0.1
          ansible_port: $ssh_port
          ansible_user: deploy
          ansible_ssh_private_key_file: $work/id
          ansible_ssh_common_args: -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes
          ansible_python_interpreter: /usr/bin/python3
          kubectl_version: "$kubectl_version"
          kubectl_url: "http://host.docker.internal:$port/kubectl"
          kube_tools_install_minikube: false
INV

# The target is as strict as a real host: without acl, deploy cannot become another
# unprivileged user (nobody here), which is why the base role comes first.
if ANSIBLE_STDOUT_CALLBACK=default ansible -i "$work/inventory.yml" "$name" -b --become-user nobody \
  -m ansible.builtin.command -a 'id -un' >"$work/noacl.log" 2>&1; then
  cat "$work/noacl.log"; echo "the target let deploy become nobody without acl: it hides what a real host refuses"; exit 1
fi
grep -q 'Failed to set permissions on the temporary files' "$work/noacl.log" || { cat "$work/noacl.log"; exit 1; }
echo "without acl: deploy cannot become an unprivileged user (as on a real host)"

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
# What a remote host reached as a non-root user needs to become another unprivileged user.
as_minikube=$(ANSIBLE_STDOUT_CALLBACK=default ansible -i "$work/inventory.yml" "$name" -b --become-user minikube \
  -m ansible.builtin.command -a 'id -un') || { echo "$as_minikube"; exit 1; }
echo "$as_minikube" | grep -qx minikube || { echo "deploy could not become minikube: $as_minikube"; exit 1; }
echo "deploy -> sudo -> minikube: $(docker exec "$name" dpkg-query -W acl)"

echo "--- Docker's apt key: kept only with the expected fingerprint"
export GNUPGHOME=$work/gnupg
install -d -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'readocr test key <test@readocr.invalid>' ed25519 sign never
gpg --batch --armor --export >"$work/www/gpg"
fpr=$(gpg --batch --with-colons --show-keys "$work/www/gpg" | awk -F: '$1 == "pub" { p = 1; next } p && $1 == "fpr" { print $10; exit }')
key_play() {
  ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_ROLES_PATH="$root/ansible/roles" ansible-playbook -i "$work/inventory.yml" \
    "$root/test/ansible/docker-key.yml" -e "docker_repo_key_url=http://host.docker.internal:$port/gpg" "$@"
}
if key_play -e docker_repo_key_fingerprint=9DC858229FC7DD38854AE2D88D81803C0EBFCD88 >"$work/key-wrong.log" 2>&1; then
  cat "$work/key-wrong.log"; echo "a key with another fingerprint was accepted"; exit 1
fi
grep -q "not Docker's published key" "$work/key-wrong.log" || { cat "$work/key-wrong.log"; exit 1; }
if docker exec "$name" test -e /etc/apt/keyrings/docker.asc; then echo "the wrong key was left in place"; exit 1; fi
echo "another key: refused, removed"
key_play -e "docker_repo_key_fingerprint=$fpr" >"$work/key-right.log" 2>&1 || { cat "$work/key-right.log"; exit 1; }
docker exec "$name" stat -c '%n %U %a' /etc/apt/keyrings /etc/apt/keyrings/docker.asc
echo "the expected key ($fpr): kept"
echo "ansible: passed"
