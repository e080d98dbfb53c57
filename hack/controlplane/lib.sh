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
# Linker flags for binaries built from k8s.io/kubernetes: without the version stamps they report a
# placeholder version (v0.0.0-master), which trips kubeVersion checks.
kube_ldflags() {
  local minor="${KUBERNETES_VERSION#v1.}" ldflags="-s -w" pkg
  minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ldflags"
}
