#!/usr/bin/env bash
# Imports OCI (or docker-save) image archives into the real node's containerd, namespace k8s.io, where
# the kubelet finds them (pods use imagePullPolicy IfNotPresent or Never: no registry is reachable).
# An archive whose image is already there with the same manifest digest is skipped.
#
#   load-image.sh ARCHIVE...
#
# The node is found through its link (one real node per machine); CONTAINERD_ADDRESS overrides that.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($#)) || { echo "usage: $0 ARCHIVE..." >&2; exit 2; }
if [[ -z "${CONTAINERD_ADDRESS:-}" ]]; then
  state=$(node_owner)
  [[ -n "$state" ]] || { echo "load-image: no real node runs here (make cluster-up REAL_NODE=1)" >&2; exit 1; }
  CONTAINERD_ADDRESS="$state/node/containerd/containerd.sock"
fi
ctr() { "$NODE_BIN_DIR/ctr" --address "$CONTAINERD_ADDRESS" -n k8s.io "$@"; }

# The kubelet asks for normalised references (busybox -> docker.io/library/busybox:latest).
normalise() {
  local ref=$1 first=${1%%/*}
  [[ "$ref" == */* && ( "$first" == *.* || "$first" == *:* || "$first" == localhost ) ]] || {
    [[ "$ref" == */* ]] && ref="docker.io/$ref" || ref="docker.io/library/$ref"
  }
  [[ "${ref##*/}" == *[:@]* ]] || ref="$ref:latest"
  echo "$ref"
}
# Prints "name digest" for each image the archive's index.json names (nothing for docker-save archives).
archive_images() {
  tar -xOf "$1" index.json 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin).get("manifests", []):
    name = m.get("annotations", {}).get("io.containerd.image.name")
    if name:
        print(name, m["digest"])' || true
}

# True when every image in $wanted is already in containerd under its normalised name, same digest.
all_present() {
  local present name digest
  [[ -n "$wanted" ]] || return 1
  present=$(ctr images ls 2>/dev/null | awk 'NR > 1 {print $1, $3}')
  while read -r name digest; do
    grep -qxF "$(normalise "$name") $digest" <<<"$present" || return 1
  done <<<"$wanted"
}

for archive in "$@"; do
  [[ -f "$archive" ]] || { echo "load-image: $archive: no such file" >&2; exit 1; }
  wanted=$(archive_images "$archive")
  if all_present; then
    echo "load-image: $(basename "$archive"): already present"
    continue
  fi
  started=$(date +%s.%N)
  ctr images import --local "$archive" >/dev/null 2> >(grep -v "DEPRECATION: The support for cgroup v1" >&2)
  while read -r name digest; do
    [[ -z "$name" || "$(normalise "$name")" == "$name" ]] && continue
    ctr images tag --force "$name" "$(normalise "$name")" >/dev/null
  done <<<"$wanted"
  printf 'load-image: %s imported in %.1fs\n' "$(basename "$archive")" "$(echo "$(date +%s.%N) - $started" | bc)"
done
