#!/usr/bin/env bash
# Starts the local control plane with one real node (`make cluster-up REAL_NODE=1`): the host network and
# its safety net first, then the control plane listening on the node address, then the node.
#
#   cluster-up.sh [STATE_DIR]    (default: <repo>/.cluster)
#
# Prints `export KUBECONFIG=...` like hack/controlplane/cluster-up.sh; hack/controlplane/cluster-down.sh
# STATE_DIR stops everything and restores the host. On any failure everything started is undone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
STATE_DIR="${1:-$(cd "$NODE_DIR/../.." && pwd)/.cluster}"
[[ $(id -u) == 0 ]] || { echo "cluster-up: a real node needs root (network, mounts, cgroups)" >&2; exit 1; }
# As hack/controlplane/cluster-up.sh: an empty directory, or one of ours that holds no cluster.
if [[ -e "$STATE_DIR/pids" || -e "$STATE_DIR/node" ]]; then
  echo "cluster-up: $STATE_DIR already holds a cluster; run hack/controlplane/cluster-down.sh $STATE_DIR first" >&2
  exit 1
fi
if [[ -d "$STATE_DIR" && ! -e "$STATE_DIR/$STATE_MARKER" && -n "$(ls -A "$STATE_DIR")" ]]; then
  echo "cluster-up: $STATE_DIR is not empty and not a cluster state directory; choose another" >&2
  exit 1
fi
mkdir -p "$STATE_DIR/node"
touch "$STATE_DIR/$STATE_MARKER"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
undo() {
  echo "cluster-up: FAILED; logs kept in $STATE_DIR/logs" >&2
  "$CONTROLPLANE_DIR/cluster-down.sh" "$STATE_DIR" --keep-logs >&2 || true
  exit 1
}
"$NODE_DIR/net-up.sh" "$STATE_DIR" || undo
MODELOPS_NODE_IP="$NODE_IP" "$CONTROLPLANE_DIR/cluster-up.sh" "$STATE_DIR" >"$STATE_DIR/node/env" || exit 1
"$NODE_DIR/node-up.sh" "$STATE_DIR" || undo
cat "$STATE_DIR/node/env"
