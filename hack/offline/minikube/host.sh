#!/usr/bin/env bash
# Prepares this host for `minikube start --driver=none --container-runtime=containerd` without
# systemd and without a registry. Each step, and why:
#  1. packages: containerd, runc, CNI plugins, conntrack, socat, ethtool, ebtables (the none
#     driver runs Kubernetes on this host), sudo (minikube runs every host command through it).
#  2. crictl in /usr/local/bin: minikube runs `sudo crictl`, and sudo's secure_path has no $BIN.
#  3. /opt/cni/bin -> Debian's plugins (/usr/lib/cni).
#  4. /etc/containerd/config.toml with restrict_oom_score_adj=true written WITHOUT spaces:
#     minikube seds `restrict_oom_score_adj = ...` to false, and root here lacks
#     CAP_SYS_RESOURCE, so runc could not give pod sandboxes an oom_score_adj below its own.
#  5. /etc/init.d/containerd: Debian's package has only a systemd unit, and minikube's OpenRC
#     code runs `service containerd restart`; its environment sends any pull to 127.0.0.1:9.
#  6. a `systemctl` shim on minikube's PATH only: systemctl exists here but systemd is not PID 1,
#     and minikube picks its init system with `systemctl --version`.
#  7. the node's images imported into containerd, and kubeadm/kubelet/kubectl in minikube's
#     binary cache, so that nothing is downloaded.
#  8. Service and pod addresses never leave the host: until kube-proxy has programmed a Service,
#     a connection to its ClusterIP follows the default route out of the machine. Here the
#     network behind that route accepts any :443 connection and answers 404, and the API server
#     kept such a connection for metrics-server: the aggregator saw 404 for good and the metrics
#     API stayed unavailable (`kubectl top`: "Metrics API not available"). A chain in the filter
#     table rejects the Service range on the way out of the default interface, so such a
#     connection fails at once and is retried once kube-proxy routes it.
#  9. $MK/wrap/minikube: minikube with the environment above, for users and tests.
# What is replaced is saved once under $MK/host-backup; down.sh puts it back.
set -euo pipefail
source "$(dirname "$0")/env.sh"
apt_install sudo containerd runc containernetworking-plugins iptables conntrack socat ethtool ebtables
backup=$MK/host-backup
mkdir -p "$backup"
save() {
  local f=$1 b
  b="$backup/$(echo "$1" | tr / _)"
  { [ -e "$b" ] || [ -e "$b.absent" ]; } && return 0
  if [ -e "$f" ]; then cp -a "$f" "$b"; else touch "$b.absent"; fi
}
for f in /etc/containerd/config.toml /etc/crictl.yaml /etc/hosts /etc/init.d/containerd /usr/local/bin/crictl /opt/cni; do save "$f"; done

install -m 0755 "$BIN/crictl" /usr/local/bin/crictl
mkdir -p /opt/cni/bin /etc/cni/net.d
for p in /usr/lib/cni/*; do ln -sfn "$p" "/opt/cni/bin/$(basename "$p")"; done

mkdir -p /etc/containerd
containerd config default | sed -e 's|^\( *\)restrict_oom_score_adj = .*$|\1restrict_oom_score_adj=true|' >/etc/containerd/config.toml
grep -q '^ *restrict_oom_score_adj=true' /etc/containerd/config.toml

cat >/etc/init.d/containerd <<'SH'
#!/bin/bash
# containerd for a host without systemd (written by readocr's hack/offline/minikube/host.sh)
PIDFILE=/run/containerd-init.pid
LOG=/var/log/containerd.log
# No image may be pulled from outside this machine: every registry request goes to a closed port.
export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=localhost,127.0.0.1
start() { start-stop-daemon --start --quiet --oknodo --background --make-pidfile --pidfile $PIDFILE \
            --output $LOG --exec /usr/bin/containerd -- --config /etc/containerd/config.toml
          for _ in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] && return 0; sleep 0.2; done; return 1; }
stop() { start-stop-daemon --stop --quiet --oknodo --pidfile $PIDFILE --retry TERM/15/KILL/5 --remove-pidfile; }
case "$1" in
  start) start ;; stop) stop ;; restart) stop; start ;;
  status) start-stop-daemon --status --pidfile $PIDFILE ;;
  *) echo "Usage: $0 {start|stop|restart|status}"; exit 1 ;;
esac
SH
chmod 0755 /etc/init.d/containerd

cat >"$SHIM/systemctl" <<'SH'
#!/bin/sh
# minikube decides "systemd or OpenRC" with `systemctl --version`; systemd is installed here but is not PID 1.
[ -d /run/systemd/system ] && exec /usr/bin/systemctl "$@"
echo "System has not been booted with systemd as init system (PID 1). Can't operate." >&2
exit 1
SH
chmod 0755 "$SHIM/systemctl"

out_if=$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
iptables -N READOCR-OFFLINE 2>/dev/null || iptables -F READOCR-OFFLINE
# Only the Service range: once kube-proxy has rewritten a connection to a pod address, the
# output interface this chain sees is still the one routed before the rewrite.
iptables -A READOCR-OFFLINE -o "${out_if:?no default route}" -d 10.96.0.0/12 -j REJECT --reject-with icmp-net-unreachable
for chain in OUTPUT FORWARD; do
  iptables -C "$chain" -j READOCR-OFFLINE 2>/dev/null || iptables -I "$chain" 1 -j READOCR-OFFLINE
done

service containerd status >/dev/null 2>&1 || service containerd start
for t in "$IMAGES"/*.tar; do ctr -n k8s.io images import "$t" >/dev/null; done

cache=$HOME/.minikube/cache/linux/amd64/$KUBERNETES_VERSION
mkdir -p "$cache"
for b in kubeadm kubelet kubectl; do cmp -s "$BIN/$b" "$cache/$b" || install -m 0755 "$BIN/$b" "$cache/$b"; done

{
  echo '#!/usr/bin/env bash'
  echo '# minikube as built by readocr'"'"'s hack/offline/minikube, with its guards (env.sh): nothing leaves this machine.'
  printf 'exec env PATH=%q MINIKUBE_WANTUPDATENOTIFICATION=false MINIKUBE_IN_STYLE=false ' "$SHIM:$BIN:$PATH"
  printf 'HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 '
  printf 'NO_PROXY=%q no_proxy=%q %q "$@"\n' "$NOPX" "$NOPX" "$BIN/minikube"
} >"$WRAP/minikube"
chmod 0755 "$WRAP/minikube"
ln -sfn "$BIN/kubectl" "$WRAP/kubectl"
log "host ready for minikube --driver=none (wrapper: $WRAP/minikube)"
