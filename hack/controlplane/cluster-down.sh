#!/usr/bin/env bash
# Stops a control plane started by cluster-up.sh and removes its state.
#
#   cluster-down.sh [STATE_DIR] [--keep-logs]    (default: <repo>/.cluster)
#
# Only the processes whose pids cluster-up.sh recorded are signalled, and only while their command
# line still names STATE_DIR (a recycled pid belongs to someone else).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CONTROLPLANE_DIR/procs.sh"
REPO_DIR="$(cd "$CONTROLPLANE_DIR/../.." && pwd)"
STATE_DIR="${1:-$REPO_DIR/.cluster}"
KEEP_LOGS="${2:-}"
[[ -d "$STATE_DIR" ]] || { echo "cluster-down: nothing at $STATE_DIR"; exit 0; }
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
if [[ ! -e "$STATE_DIR/$STATE_MARKER" ]]; then
  echo "cluster-down: $STATE_DIR was not made by cluster-up.sh; leaving it alone" >&2
  exit 1
fi

# A real node (hack/node/) goes first: its pods are stopped through the API server.
NODE_SCRIPTS="$CONTROLPLANE_DIR/../node"
if [[ -e "$STATE_DIR/node" ]]; then "$NODE_SCRIPTS/node-down.sh" "$STATE_DIR"; fi
# The API server's clients first, then the API server, then its storage: an API server whose etcd
# is already gone was seen ignoring SIGTERM for minutes.
stop kwok & stop kube-scheduler & stop kube-controller-manager & wait
stop kube-apiserver
stop etcd
# The node's address goes only now: the API server listened on it.
if [[ -e "$STATE_DIR/node" ]]; then "$NODE_SCRIPTS/net-down.sh" "$STATE_DIR"; fi

if [[ "$KEEP_LOGS" == --keep-logs ]]; then
  find "$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name logs ! -name "$STATE_MARKER" -exec rm -rf {} +
else
  rm -rf "$STATE_DIR"
fi
echo "cluster-down: stopped the control plane, removed $STATE_DIR${KEEP_LOGS:+ (logs kept)}" >&2
