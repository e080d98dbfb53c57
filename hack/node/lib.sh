# Shared by the real-node scripts: pinned versions, where the built parts live, the node's addresses.
# shellcheck shell=bash
NODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../controlplane/lib.sh
source "$NODE_DIR/../controlplane/lib.sh"
# shellcheck source=versions.env
source "$NODE_DIR/versions.env"
NODE_KEY="k8s-${KUBERNETES_VERSION}_containerd-${CONTAINERD_VERSION}_coredns-${COREDNS_VERSION}_metrics-server-${METRICS_SERVER_VERSION}"
NODE_CACHE="${MODELOPS_CACHE_DIR:-$HOME/.cache/modelops}"
NODE_BIN_DIR="${MODELOPS_NODE_BIN_DIR:-$NODE_CACHE/node/$NODE_KEY}"
NODE_IMAGE_DIR="$NODE_BIN_DIR/images"
NODE_BINARIES=(kubelet kube-proxy containerd ctr containerd-shim-runc-v2 coredns metrics-server sa-request)
# Debian packages the node needs at run time (runc, CNI plugins, nft for kube-proxy) and to build the
# pause and busybox images.
NODE_APT_PACKAGES=(runc containernetworking-plugins nftables iptables conntrack busybox-static gcc libc6-dev)
CNI_BIN_DIR=/usr/lib/cni

# Images built here, imported into the node's containerd: name and OCI archive.
PAUSE_VERSION=3.10.2   # kubernetes' build/pause/Makefile TAG for the pinned release
BUSYBOX_VERSION="$(dpkg-query -W -f='${source:Upstream-Version}' busybox-static 2>/dev/null || echo missing)"
PAUSE_IMAGE="modelops.local/pause:$PAUSE_VERSION"
COREDNS_IMAGE="modelops.local/coredns:$COREDNS_VERSION"
METRICS_SERVER_IMAGE="modelops.local/metrics-server:$METRICS_SERVER_VERSION"
BUSYBOX_IMAGE="modelops.local/busybox:$BUSYBOX_VERSION"
# The archives build-images.sh writes into NODE_IMAGE_DIR, one per image above.
NODE_IMAGE_ARCHIVES=(pause.tar coredns.tar metrics-server.tar "busybox-$BUSYBOX_VERSION.tar")

# The node's addresses. Only one real node runs per machine: the names and ranges below are fixed.
NODE_NAME=modelops-node
NODE_IP=10.250.0.1           # on a host-only veth (this kernel has no dummy links); kubelet and API server
NODE_NET=10.250.0.0/24
NODE_LINK=mo-node            # its peer is mo-node-peer
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
POD_BRIDGE=mo-cni0
SERVICE_CIDR=10.96.0.0/16    # as hack/controlplane/cluster-up.sh gives the API server
DNS_SERVICE_IP=10.96.0.10
NFT_TABLE=modelops_node      # family inet: the network safety net
# Host settings the kubelet, the bridge plugin or we change; saved before, restored after.
NODE_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.forwarding
  net.ipv6.conf.all.forwarding net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.ipv4.conf.all.route_localnet)
# Paths the kubelet, containerd and runc use whatever they are told, and no one else here uses:
# removed after unless they existed before.
NODE_FIXED_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/containerd)
# CNI's result cache, shared with other CNI users (podman): only our network's entries are removed, and
# the directories only when empty and not there before.
CNI_CACHE_DIR=/var/lib/cni
CNI_NETWORK=modelops
# containerd's content and snapshots outlive clusters (images imported once stay); its state does not.
CONTAINERD_ROOT="$NODE_CACHE/containerd"

# The state directory of the real node running on this machine (the node link's alias), if any.
node_owner() { ip -o link show "$NODE_LINK" 2>/dev/null | sed -n 's/.* alias \(.*\)$/\1/p'; }
