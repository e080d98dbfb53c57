#!/usr/bin/env bash
# Builds (or reuses) every control-plane binary at the pinned versions into the bin cache.
# A warm run checks that each binary exists and builds nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The wrapper modules must agree with versions.env (pin.sh rewrites them from it).
grep -qx "require k8s.io/kubernetes $KUBERNETES_VERSION" "$CONTROLPLANE_DIR/kube/go.mod" &&
  grep -qx "require go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$CONTROLPLANE_DIR/etcd/go.mod" || {
  echo "kube/go.mod or etcd/go.mod does not match versions.env: run hack/controlplane/pin.sh" >&2
  exit 1
}

mkdir -p "$(dirname "$BIN_DIR")"
# Concurrent runs (several checkouts, parallel make) wait for the first instead of building twice.
exec 9>"$BIN_DIR.lock"
flock 9
missing=()
for b in "${CONTROLPLANE_BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || missing+=("$b"); done
if ((${#missing[@]} == 0)); then
  echo "control-plane binaries up to date in $BIN_DIR"
  exit 0
fi
echo "building ${missing[*]} into $BIN_DIR"
mkdir -p "$BIN_DIR"
export GOTOOLCHAIN=auto GOFLAGS="${GOFLAGS:-} -trimpath"
needs() { [[ " ${missing[*]} " == *" $1 "* ]]; }

kube_cmds=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  needs "$b" && kube_cmds+=("k8s.io/kubernetes/cmd/$b")
done
if ((${#kube_cmds[@]})); then
  # One invocation, so the packages the commands share compile once.
  (cd "$CONTROLPLANE_DIR/kube" && go build -ldflags "$(kube_ldflags)" -o "$BIN_DIR/" "${kube_cmds[@]}")
fi
if needs etcd; then
  (cd "$CONTROLPLANE_DIR/etcd" && go build -ldflags "-s -w" -o "$BIN_DIR/etcd" .)
fi
if needs kwok; then
  GOBIN="$BIN_DIR" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi
if needs helm; then
  # As helm's own Makefile does; otherwise `helm version` reports only the minor version.
  GOBIN="$BIN_DIR" go install -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi
for b in "${CONTROLPLANE_BINARIES[@]}"; do
  [[ -x "$BIN_DIR/$b" ]] || { echo "build finished but $BIN_DIR/$b is missing" >&2; exit 1; }
done
echo "control-plane binaries ready in $BIN_DIR"
