#!/usr/bin/env bash
# Clean-up steps of the real node, used by node-down.sh (and node-up.sh after a killed run).
#
#   node-clean.sh containers STATE_DIR   every task, container and sandbox in containerd's k8s.io namespace
#   node-clean.sh host STATE_DIR         leftover shims, mounts and the kubelet's cgroups
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
what=$1
STATE_DIR="$(cd "$2" && pwd)"
N="$STATE_DIR/node"
ctr() { "$NODE_BIN_DIR/ctr" --address "$N/containerd/containerd.sock" -n k8s.io "$@"; }

containers() {
  local id
  for id in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s SIGKILL "$id" 2>/dev/null || true; done
  for id in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr sandboxes ls -q 2>/dev/null); do ctr sandboxes rm -f "$id" >/dev/null 2>&1 || true; done
}

# Unmounts everything below a directory, deepest first.
unmount_under() {
  local m
  findmnt -rn -o TARGET | awk -v d="$1/" 'index($0 "/", d) == 1' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}

host() {
  local pid
  # Shims are started by containerd in their own sessions; ours name our socket.
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*$N/containerd/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  unmount_under "$STATE_DIR"
  unmount_under "$CONTAINERD_ROOT"
  for p in "${NODE_FIXED_PATHS[@]}"; do [[ -d "$p" ]] && unmount_under "$p"; done
  # Containers whose shim died (containerd killed) still run: every process in the kubelet's cgroup
  # tree is a container's. Then pod cgroups go; the kubelet's QoS levels and our root remain.
  for pid in $(cat /sys/fs/cgroup/pids/modelops-node/cgroup.procs $(find /sys/fs/cgroup/pids/modelops-node \
      -mindepth 2 -name cgroup.procs 2>/dev/null) 2>/dev/null | sort -u); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  sleep 0.2
  find /sys/fs/cgroup/*/modelops-node -depth -type d -exec rmdir {} + 2>/dev/null || true
  for h in /sys/fs/cgroup/*/modelops-node; do
    [[ -d "$h" ]] && echo "node-clean: $h could not be removed" >&2
  done
  return 0
}

case "$what" in
  containers) containers ;;
  host) host ;;
  *) echo "usage: $0 containers|host STATE_DIR" >&2; exit 2 ;;
esac
