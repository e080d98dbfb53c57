#!/usr/bin/env bash
# Stops a control plane started by cluster-up.sh and removes its state.
#
#   cluster-down.sh [STATE_DIR] [--keep-logs]    (default: <repo>/.cluster)
#
# Only the processes whose pids cluster-up.sh recorded are signalled, and only while their command
# line still names STATE_DIR (a recycled pid belongs to someone else).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO_DIR="$(cd "$CONTROLPLANE_DIR/../.." && pwd)"
STATE_DIR="${1:-$REPO_DIR/.cluster}"
KEEP_LOGS="${2:-}"
[[ -d "$STATE_DIR" ]] || { echo "cluster-down: nothing at $STATE_DIR"; exit 0; }
STATE_DIR="$(cd "$STATE_DIR" && pwd)"

ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' </proc/"$1"/cmdline | grep -qF -- "$STATE_DIR"; }
pids=(); declare -A names
# Reverse start order: kwok and the controllers first, etcd last.
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f="$STATE_DIR/pids/$name.pid"
  [[ -f "$f" ]] || continue
  pid=$(cat "$f")
  if ours "$pid"; then kill -TERM "$pid" 2>/dev/null && pids+=("$pid") && names[$pid]=$name; fi
done
for _ in $(seq 100); do
  left=(); for pid in "${pids[@]}"; do ours "$pid" && left+=("$pid"); done
  ((${#left[@]} == 0)) && break
  sleep 0.1
done
for pid in "${left[@]}"; do
  echo "cluster-down: ${names[$pid]} (pid $pid) ignored SIGTERM for 10s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
done

if [[ "$KEEP_LOGS" == --keep-logs ]]; then
  find "$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
else
  rm -rf "$STATE_DIR"
fi
echo "cluster-down: stopped ${#pids[@]} processes, removed $STATE_DIR${KEEP_LOGS:+ (logs kept)}" >&2
