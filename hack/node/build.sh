#!/usr/bin/env bash
# Builds (or reuses) every part of the real node at the pinned versions into the node cache:
# kubelet and kube-proxy (the control plane's k8s.io/kubernetes version), containerd, ctr and the runc
# shim, CoreDNS (cluster zone only), metrics-server, and the OCI archives of the node's own images
# (pause, CoreDNS, metrics-server, busybox). Installs the Debian packages the node needs.
# A warm run checks that each part exists and builds nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$NODE_DIR/apt.sh"
source "$NODE_DIR/lib.sh"  # again: the busybox image's tag is the installed package's version

mkdir -p "$(dirname "$NODE_BIN_DIR")"
# Concurrent runs (several checkouts, parallel make) wait for the first instead of building twice.
exec 9>"$NODE_BIN_DIR.lock"
flock 9
mapfile -t missing < <("$NODE_DIR/missing.sh" || true)
if ((${#missing[@]} == 0)); then
  echo "node parts up to date in $NODE_BIN_DIR"
  exit 0
fi
echo "building ${missing[*]} into $NODE_BIN_DIR"
mkdir -p "$NODE_BIN_DIR" "$NODE_IMAGE_DIR"
export GOTOOLCHAIN=auto GOFLAGS="${GOFLAGS:-} -trimpath"
needs() { [[ " ${missing[*]} " == *" $1 "* ]]; }
started=$(date +%s)

ctrd=github.com/containerd/containerd/v2
ctrd_ldflags="-s -w -X $ctrd/version.Version=$CONTAINERD_VERSION -X $ctrd/version.Package=$ctrd"
if needs containerd || needs ctr; then
  # btrfs needs C headers this machine does not have; the overlayfs snapshotter is what we use.
  GOBIN="$NODE_BIN_DIR" go install -tags no_btrfs -ldflags "$ctrd_ldflags" \
    "$ctrd/cmd/containerd@$CONTAINERD_VERSION" "$ctrd/cmd/ctr@$CONTAINERD_VERSION"
fi
if needs containerd-shim-runc-v2; then
  # Static, as containerd's Makefile builds it: the shim outlives containerd restarts.
  CGO_ENABLED=0 GOBIN="$NODE_BIN_DIR" go install -ldflags "$ctrd_ldflags" \
    "$ctrd/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
fi
if needs coredns; then
  (cd "$NODE_DIR/coredns" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$NODE_BIN_DIR/coredns" .)
fi
if needs metrics-server; then
  CGO_ENABLED=0 GOBIN="$NODE_BIN_DIR" go install \
    -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
fi
if needs sa-request; then
  (cd "$NODE_DIR/sa-request" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$NODE_BIN_DIR/sa-request" .)
fi
# Last: it shares most packages with the control plane, whose build may still be filling the cache.
kube_cmds=()
for b in kubelet kube-proxy; do needs "$b" && kube_cmds+=("k8s.io/kubernetes/cmd/$b"); done
if ((${#kube_cmds[@]})); then
  (cd "$CONTROLPLANE_DIR/kube" && go build -ldflags "$(kube_ldflags)" -o "$NODE_BIN_DIR/" "${kube_cmds[@]}")
fi
echo "node binaries built in $(( $(date +%s) - started ))s"
"$NODE_DIR/build-images.sh"
if still=$("$NODE_DIR/missing.sh"); then :; else
  echo "build finished but these are missing from $NODE_BIN_DIR: $still" >&2
  exit 1
fi
echo "node parts ready in $NODE_BIN_DIR"
