#!/usr/bin/env bash
# Makes sure a Docker engine answers. A running engine is used as it is. Otherwise, as root on
# Debian/Ubuntu, docker.io is installed if missing and dockerd is started: through systemd where
# it runs, else in the background with its log under $HOME/.cache/readocr (CI machines and
# containers have no systemd).
set -euo pipefail
docker info >/dev/null 2>&1 && exit 0

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "No Docker engine: install Docker (https://docs.docker.com/engine/install/) and start it." >&2
    exit 1
  fi
  echo "Installing docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  ${SUDO:-} systemctl start docker
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "dockerd is installed but not running, and starting it needs root." >&2
    exit 1
  fi
  # dockerd uses a containerd at /run/containerd if its socket exists. After a reboot or a crash
  # that socket can outlive its containerd (minikube's runs there), and dockerd then waits on it
  # until it gives up: remove sockets nothing answers on so dockerd starts its own containerd.
  sock=/run/containerd/containerd.sock
  if [ -S "$sock" ] && command -v ctr >/dev/null && ! timeout 5 ctr --address "$sock" version >/dev/null 2>&1; then
    echo "Removing $sock: no containerd answers on it"
    rm -f "$sock" "$sock.ttrpc"
  fi
  log="$HOME/.cache/readocr/dockerd.log"
  mkdir -p "$(dirname "$log")"
  echo "Starting dockerd (log: $log)"
  nohup dockerd >"$log" 2>&1 &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not come up; see ${log:-journalctl -u docker}" >&2
exit 1
