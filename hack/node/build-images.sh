#!/usr/bin/env bash
# Writes the OCI archives of the node's own images into NODE_IMAGE_DIR (no registry is reachable):
# pause from kubernetes' pause.c, CoreDNS and metrics-server from the binaries build.sh made, and a test
# image: busybox (shell, wget, nslookup, httpd) from Debian's busybox-static plus sa-request (an API client).
# Called by build.sh under its lock.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pack() { python3 "$NODE_DIR/oci_image.py" "$@"; }
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT

if [[ ! -f "$NODE_IMAGE_DIR/pause.tar" ]]; then
  src="$(cd "$CONTROLPLANE_DIR/kube" && GOTOOLCHAIN=auto go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  # As kubernetes' build/pause/Makefile compiles it.
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-modelops" -o "$scratch/pause" "$src"
  strip "$scratch/pause"
  pack --name "$PAUSE_IMAGE" --out "$NODE_IMAGE_DIR/pause.tar" --user 65535:65535 \
    --entrypoint /pause --file "$scratch/pause:/pause"
fi
if [[ ! -f "$NODE_IMAGE_DIR/coredns.tar" ]]; then
  pack --name "$COREDNS_IMAGE" --out "$NODE_IMAGE_DIR/coredns.tar" \
    --entrypoint /coredns --file "$NODE_BIN_DIR/coredns:/coredns"
fi
if [[ ! -f "$NODE_IMAGE_DIR/metrics-server.tar" ]]; then
  pack --name "$METRICS_SERVER_IMAGE" --out "$NODE_IMAGE_DIR/metrics-server.tar" \
    --entrypoint /metrics-server --file "$NODE_BIN_DIR/metrics-server:/metrics-server"
fi
busybox="busybox-$BUSYBOX_VERSION.tar"
if [[ ! -f "$NODE_IMAGE_DIR/$busybox" ]]; then
  links=()
  for applet in sh cat echo env grep hostname httpd id ls mkdir nslookup sleep ssl_client timeout touch wget; do links+=(--link "/bin/$applet:busybox"); done
  pack --name "$BUSYBOX_IMAGE" --out "$NODE_IMAGE_DIR/$busybox" \
    --entrypoint /bin/sh --file /bin/busybox:/bin/busybox --file "$NODE_BIN_DIR/sa-request:/bin/sa-request" \
    "${links[@]}"
fi
