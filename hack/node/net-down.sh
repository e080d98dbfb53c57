#!/usr/bin/env bash
# Undoes net-up.sh and what the node's parts changed on the host: links, routes, the nftables tables
# and chains (ours, kube-proxy's, the kubelet's), sysctls, and the fixed paths that did not exist before.
#
#   net-down.sh STATE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
STATE_DIR="$1"
SAVED="$STATE_DIR/node/saved"
[[ -e "$STATE_DIR/node/net-up" ]] || exit 0

for l in "$POD_BRIDGE" "$NODE_LINK"; do ip link del "$l" 2>/dev/null || true; done
for r in "$POD_CIDR" "$SERVICE_CIDR" "$NODE_NET"; do ip route del blackhole "$r" 2>/dev/null || true; done
for t in "inet $NFT_TABLE" "ip kube-proxy" "ip6 kube-proxy"; do
  nft list table $t >/dev/null 2>&1 && nft delete table $t
done
"$NODE_DIR/kubelet-chains.sh" remove "$SAVED/nft-tables"

while IFS='=' read -r key value; do
  [[ "$(sysctl -n "$key")" == "$value" ]] || sysctl -qw "$key=$value"
done <"$SAVED/sysctls"
for p in "${NODE_FIXED_PATHS[@]}"; do
  grep -qxF "$p" "$SAVED/paths" || rm -rf "$p"
done
if [[ -d "$CNI_CACHE_DIR" ]]; then
  find "$CNI_CACHE_DIR" -name "$CNI_NETWORK-*" -delete
  grep -qxF "$CNI_CACHE_DIR" "$SAVED/paths" || find "$CNI_CACHE_DIR" -depth -type d -empty -delete
fi
rm -f "$STATE_DIR/node/net-up"
echo "net-down: host network and settings restored" >&2
