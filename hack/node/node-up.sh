#!/usr/bin/env bash
# Starts the real node next to a control plane started with MODELOPS_NODE_IP (cluster-up.sh here does
# both): containerd, the node's images, the kubelet, kube-proxy, then CoreDNS and metrics-server as pods.
# net-up.sh must have run: the safety net is in place before the first pod.
#
#   node-up.sh STATE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
STATE_DIR="$(cd "$1" && pwd)"
source "$CONTROLPLANE_DIR/procs.sh"
N="$STATE_DIR/node"
STARTUP_TIMEOUT_S="${STARTUP_TIMEOUT_S:-120}"
started_at=$(date +%s.%N)
deadline=$(( $(date +%s) + STARTUP_TIMEOUT_S ))
log() { echo "node-up: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }
[[ -e "$N/net-up" ]] || die "net-up.sh has not run for $STATE_DIR"
for b in "${NODE_BINARIES[@]}"; do
  [[ -x "$NODE_BIN_DIR/$b" ]] || die "$NODE_BIN_DIR/$b is missing: run 'make node' first"
done
kubectl() { "$BIN_DIR/kubectl" --kubeconfig="$STATE_DIR/kubeconfig" "$@"; }
export CONTAINERD_ADDRESS="$N/containerd/containerd.sock"
ctr() { "$NODE_BIN_DIR/ctr" --address "$CONTAINERD_ADDRESS" -n k8s.io "$@"; }

"$NODE_DIR/node-config.sh" "$STATE_DIR"
# The kubelet's cgroup root must exist in every hierarchy; cpuset needs its cpus and mems filled in.
for h in /sys/fs/cgroup/*/; do
  mkdir -p "$h/modelops-node"
  if [[ -f "$h/cpuset.cpus" ]]; then
    cat "$h/cpuset.cpus" >"$h/modelops-node/cpuset.cpus"
    cat "$h/cpuset.mems" >"$h/modelops-node/cpuset.mems"
  fi
done

mkdir -p "$CONTAINERD_ROOT"
# PATH: containerd finds its shim there.
start containerd env PATH="$NODE_BIN_DIR:$PATH" "$NODE_BIN_DIR/containerd" --config "$N/containerd.toml"
containerd_ready() { ctr version; }
wait_until "containerd ready" containerd_ready containerd
"$NODE_DIR/node-clean.sh" containers "$STATE_DIR"  # left in the persistent root by a killed run
archives=()
for a in "${NODE_IMAGE_ARCHIVES[@]}"; do archives+=("$NODE_IMAGE_DIR/$a"); done
"$NODE_DIR/load-image.sh" "${archives[@]}" >&2
log "node images in containerd ($(printf '%.1f' "$(echo "$(date +%s.%N) - $started_at" | bc)")s)"

start kubelet "$NODE_BIN_DIR/kubelet" \
  --config="$N/kubelet.yaml" --kubeconfig="$N/kubelet.kubeconfig" --root-dir="$N/kubelet" \
  --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" --node-labels=modelops.io/real-node=true
node_ready() { kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s; }
wait_until "node $NODE_NAME Ready" node_ready containerd kubelet
start kube-proxy "$NODE_BIN_DIR/kube-proxy" --config="$N/kube-proxy.yaml"
proxy_rules() { nft list table ip kube-proxy | grep -q "$DNS_SERVICE_IP\|10.96.0.1 "; }
wait_until "kube-proxy rules" proxy_rules containerd kubelet kube-proxy

API_PORT="$(sed 's|.*:||' "$STATE_DIR/server")"
METRICS_PORT=4443
for addon in coredns metrics-server; do
  sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@METRICS_SERVER_IMAGE@|$METRICS_SERVER_IMAGE|g" \
    -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" -e "s|@NODE_IP@|$NODE_IP|g" \
    -e "s|@API_PORT@|$API_PORT|g" -e "s|@METRICS_PORT@|$METRICS_PORT|g" \
    "$NODE_DIR/addons/$addon.yaml" | kubectl apply -f - >/dev/null
done
coredns_ready() { kubectl -n kube-system wait --for=condition=Available deployment/coredns --timeout=1s; }
wait_until "CoreDNS available" coredns_ready containerd kubelet kube-proxy
metrics_ready() { kubectl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=1s; }
wait_until "metrics API available" metrics_ready containerd kubelet kube-proxy
log "node $NODE_NAME up; containerd socket $CONTAINERD_ADDRESS"
