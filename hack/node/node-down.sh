#!/usr/bin/env bash
# Stops the real node started by node-up.sh: pods first (through the API server, so the kubelet tears
# down their network and volumes), then kube-proxy, the kubelet, containerd and its shims; unmounts and
# removes what they left. The host network is restored afterwards by net-down.sh (the API server
# listens on the node address until the control plane stops). Called by controlplane/cluster-down.sh.
#
#   node-down.sh STATE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
STATE_DIR="$(cd "$1" && pwd)"
source "$CONTROLPLANE_DIR/procs.sh"
N="$STATE_DIR/node"
owner=$(node_owner)
if [[ -n "$owner" && "$owner" != "$STATE_DIR" ]]; then
  # Its cgroups, fixed paths and containerd root are shared: cleaning them would break that node.
  echo "node-down: the real node on this machine belongs to $owner; leaving the host alone" >&2
  exit 0
fi
kubectl() { "$BIN_DIR/kubectl" --kubeconfig="$STATE_DIR/kubeconfig" --request-timeout=5s "$@"; }

if [[ -f "$STATE_DIR/pids/kubelet.pid" ]] && alive kubelet && kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  kubectl cordon "$NODE_NAME" >/dev/null || true
  kubectl delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --grace-period=2 --timeout=60s \
    --wait >/dev/null 2>&1 || echo "node-down: pods did not all stop in 60s; killing the rest" >&2
fi
stop kube-proxy & stop kubelet & wait
if [[ -f "$STATE_DIR/pids/containerd.pid" ]] && alive containerd; then
  "$NODE_DIR/node-clean.sh" containers "$STATE_DIR"
fi
stop containerd
"$NODE_DIR/node-clean.sh" host "$STATE_DIR"
echo "node-down: node $NODE_NAME stopped" >&2
