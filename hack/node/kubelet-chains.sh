#!/usr/bin/env bash
# Removes the iptables chains the kubelet creates (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...) and the
# rules jumping to them, then drops the iptables-nft tables that did not exist before and are now empty.
#
#   kubelet-chains.sh remove SAVED_NFT_TABLES     (the `nft list tables` output from before the node)
set -euo pipefail
[[ "${1:-}" == remove && -f "${2:-}" ]] || { echo "usage: $0 remove SAVED_NFT_TABLES" >&2; exit 2; }
saved=$2
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    rules=$("$ipt" -w -t "$table" -S 2>/dev/null) || continue
    # Jumps into KUBE-* chains from any chain, then the chains themselves.
    while read -r rule; do
      [[ -n "$rule" ]] && eval "$ipt -w -t $table ${rule/#-A/-D}"
    done < <(grep -E '^-A .* -j KUBE-' <<<"$rules" | grep -vE '^-A KUBE-' || true)
    for chain in $(awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}' <<<"$rules"); do
      "$ipt" -w -t "$table" -F "$chain"
    done
    for chain in $(awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}' <<<"$rules"); do
      "$ipt" -w -t "$table" -X "$chain"
    done
  done
done
# iptables-nft made these tables for the kubelet; an empty one that was not there before goes.
nft list tables | while read -r _ family name; do
  grep -qx "table $family $name" "$saved" && continue
  [[ "$name" =~ ^(filter|nat|mangle)$ ]] || continue
  # Anything but table/chain headers, base-chain hooks and braces is a rule someone still uses.
  nft list table "$family" "$name" | grep -qvE '^\s*(table |chain |type |\}|$)' && continue
  nft delete table "$family" "$name"
done
