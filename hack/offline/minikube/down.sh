#!/usr/bin/env bash
# `minikube delete`, then undoes what host.sh did. Stops only what these scripts started
# (containerd through its pidfile, the kubelet through minikube's own OpenRC shim).
#   down.sh [--purge]   --purge also removes ~/.minikube and containerd's images and state
set -uo pipefail
source "$(dirname "$0")/env.sh"
export KUBECONFIG=$HOME/.kube/config
if [ -x "$BIN/minikube" ] && { [ -d "$HOME/.minikube/machines/minikube" ] || [ -d "$HOME/.minikube/profiles/minikube" ]; }; then
  mk delete ${1:+--purge} 2>&1 | tail -3
fi
if [ -f /var/run/kubelet.pid ]; then service kubelet stop >/dev/null 2>&1; rm -f /var/run/kubelet.pid; fi
[ -x /etc/init.d/kubelet ] && grep -q 'OpenRC init script shim' /etc/init.d/kubelet && rm -f /etc/init.d/kubelet
if service containerd status >/dev/null 2>&1; then
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks delete -f "$t" >/dev/null 2>&1; done
  for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io containers delete "$c" >/dev/null 2>&1; done
  service containerd stop
fi
# Host side effects: mounts, network namespaces, minikube's bridge, kube-proxy's and CNI's
# iptables chains, kubepods cgroups.
# shellcheck disable=SC2013 # mount points have no spaces here
for m in $(awk '$2 ~ "^/var/lib/kubelet(/|$)" || $2 ~ "^/run/containerd/" || $2 ~ "^/run/netns/cni-" {print $2}' /proc/mounts | sort -r); do
  umount -l "$m" 2>/dev/null
done
for ns in /run/netns/cni-*; do [ -e "$ns" ] && rm -f "$ns"; done
ip link del bridge 2>/dev/null
for ipt in iptables ip6tables; do
  for tbl in filter nat mangle; do
    chains=$($ipt -t $tbl -S 2>/dev/null | awk '/^-N (CNI-|KUBE-)/{print $2}')
    for ch in $chains; do
      $ipt -t $tbl -S | grep -E -- "-j $ch( |$)" | grep '^-A' | sed 's/^-A/-D/' |
        while read -r rule; do eval "$ipt -t $tbl $rule"; done
    done
    for ch in $chains; do $ipt -t $tbl -F "$ch"; done
    for ch in $chains; do $ipt -t $tbl -X "$ch"; done
  done
done
for chain in OUTPUT FORWARD; do iptables -D "$chain" -j READOCR-OFFLINE 2>/dev/null; done
iptables -F READOCR-OFFLINE 2>/dev/null && iptables -X READOCR-OFFLINE
for d in /sys/fs/cgroup/*/kubepods; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
rm -rf /etc/kubernetes/addons /var/lib/kubelet /var/lib/cni/networks/bridge /var/lib/cni/results
rmdir /etc/kubernetes 2>/dev/null
rm -f /etc/cni/net.d/1-k8s.conflist /etc/cni/net.d/*.mk_disabled /var/lib/minikube/openrc-restart-wrapper.sh
rmdir /var/lib/minikube /etc/cni/net.d /etc/cni /var/lib/cni/networks /var/lib/cni 2>/dev/null
[ -n "${1:-}" ] && rm -rf /var/lib/containerd /run/containerd
restore() {
  local f=$1 b
  b="$MK/host-backup/$(echo "$1" | tr / _)"
  if [ -e "$b.absent" ]; then rm -rf "$f" "$b.absent"; elif [ -e "$b" ]; then rm -rf "$f" && cp -a "$b" "$f" && rm -rf "$b"; fi
}
for f in /etc/containerd/config.toml /etc/crictl.yaml /etc/hosts /etc/init.d/containerd /usr/local/bin/crictl /opt/cni; do restore "$f"; done
log "minikube down"
