# Shared by the control-plane scripts: pinned versions and where the built binaries live.
# shellcheck shell=bash
CONTROLPLANE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$CONTROLPLANE_DIR/versions.env"
BIN_KEY="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
BIN_DIR="${MODELOPS_BIN_DIR:-$HOME/.cache/modelops/bin/$BIN_KEY}"
CONTROLPLANE_BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)
# cluster-up.sh marks its state directory with this file; cluster-down.sh deletes only marked ones.
STATE_MARKER=.modelops-control-plane
