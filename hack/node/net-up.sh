#!/usr/bin/env bash
# Prepares this host for the real node, before any pod can start: the node address on a host-only
# veth, blackhole routes and the nftables safety net that keep pod and Service traffic on this machine.
# Saves what it changes under STATE_DIR/node so net-down.sh can put it back.
#
#   net-up.sh STATE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
STATE_DIR="$1"
SAVED="$STATE_DIR/node/saved"
log() { echo "net-up: $*" >&2; }

if ip link show "$NODE_LINK" >/dev/null 2>&1; then
  log "a real node already runs on this machine (state: $(node_owner))"
  log "stop it with: hack/controlplane/cluster-down.sh <that state dir>"
  exit 1
fi
# The bridge's netfilter hooks (kube-proxy needs them for pod-to-Service-to-pod on one bridge) are a
# module on some kernels; built in here.
[[ -d /proc/sys/net/bridge ]] || modprobe br_netfilter
mkdir -p "$SAVED"
for s in "${NODE_SYSCTLS[@]}"; do
  v=$(sysctl -n "$s" 2>/dev/null) && printf '%s=%s\n' "$s" "$v"
done >"$SAVED/sysctls"
for p in "${NODE_FIXED_PATHS[@]}" "$CNI_CACHE_DIR"; do [[ -e "$p" || -L "$p" ]] && echo "$p"; done >"$SAVED/paths" || true
nft list tables >"$SAVED/nft-tables"
touch "$STATE_DIR/node/net-up"   # from here on net-down.sh has something to undo

# The safety net first: nothing below may carry a packet before it is in place.
nft -f - <<NFT
table inet $NFT_TABLE {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ip saddr $POD_CIDR ip daddr != $POD_CIDR counter drop comment "pods reach only pods"
    iifname != "$POD_BRIDGE" counter drop comment "nothing from outside is forwarded"
    oifname != "$POD_BRIDGE" counter drop comment "nothing forwarded leaves the pod bridge (uplink included)"
    meta nfproto ipv6 counter drop comment "no IPv6 forwarding"
  }
  chain output {
    type filter hook output priority filter - 10; policy accept;
    oifname != { "lo", "$POD_BRIDGE", "$NODE_LINK" } ip daddr { $POD_CIDR, $SERVICE_CIDR, $NODE_NET } counter drop comment "cluster ranges stay on this host"
    oifname != { "lo", "$POD_BRIDGE", "$NODE_LINK" } ip saddr { $POD_CIDR, $NODE_NET } counter drop comment "cluster sources stay on this host"
  }
  chain input {
    type filter hook input priority filter - 10; policy accept;
    ip saddr $POD_CIDR tcp dport 10250 counter drop comment "pods may not reach the kubelet"
    iifname != { "lo", "$POD_BRIDGE" } ip daddr $NODE_NET counter drop comment "node address reachable from this host only"
    iifname != { "lo", "$POD_BRIDGE" } ip saddr { $POD_CIDR, $SERVICE_CIDR, $NODE_NET } counter drop comment "no spoofed cluster sources"
  }
}
NFT
for r in "$POD_CIDR" "$SERVICE_CIDR" "$NODE_NET"; do ip route add blackhole "$r"; done

ip link add "$NODE_LINK" type veth peer name "$NODE_LINK-peer"
ip link set "$NODE_LINK" alias "$STATE_DIR"
ip addr add "$NODE_IP/32" dev "$NODE_LINK"
ip link set "$NODE_LINK-peer" up
ip link set "$NODE_LINK" up
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
log "node address $NODE_IP on $NODE_LINK; safety net: nft table inet $NFT_TABLE, blackhole routes"
