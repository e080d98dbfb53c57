#!/usr/bin/env bash
# Writes the real node's credentials and configuration into STATE_DIR/node: client certificates for the
# kubelet (Node authorizer) and kube-proxy, the kubelet's serving certificate, kubeconfigs, and the
# containerd, CNI, kubelet and kube-proxy configurations. Needs the control plane's pki/ and server.
#
#   node-config.sh STATE_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
STATE_DIR="$1"
N="$STATE_DIR/node"
PKI="$STATE_DIR/pki"
API_URL="$(cat "$STATE_DIR/server")"
mkdir -p "$N"/{cni/net.d,cni/ipam,kubelet,containerd} "$STATE_DIR/logs/pods"

# `issue NAME SUBJECT EXTENSIONS` signs NAME.crt with the cluster CA.
issue() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PKI/$1.key" \
    -out "$PKI/$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 30 \
    -out "$PKI/$1.crt" -extfile <(printf '%b' "$3") 2>/dev/null
  chmod 600 "$PKI/$1.key"
}
client_ext='keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'
issue kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "$client_ext"
issue kube-proxy-client "/CN=system:kube-proxy" "$client_ext"
issue kubelet-serving "/CN=$NODE_NAME" \
  "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"

kubeconfig() {
  cat >"$N/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: modelops
  cluster: {server: "$API_URL", certificate-authority: "$PKI/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$PKI/$1-client.crt", client-key: "$PKI/$1-client.key"}
contexts:
- name: modelops
  context: {cluster: modelops, user: $1}
current-context: modelops
KC
}
kubeconfig kubelet
kubeconfig kube-proxy

# Pods with dnsPolicy Default (CoreDNS itself) get this instead of the host's resolver, which is
# outside this machine: a loopback nameserver answers nothing and sends nothing anywhere.
echo "nameserver 127.0.0.1" >"$N/resolv.conf"

sed -e "s|@CONTAINERD_ROOT@|$CONTAINERD_ROOT|g" -e "s|@N@|$N|g" -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" \
  -e "s|@CNI_BIN_DIR@|$CNI_BIN_DIR|g" "$NODE_DIR/config/containerd.toml" >"$N/containerd.toml"
sed -e "s|@POD_BRIDGE@|$POD_BRIDGE|g" -e "s|@NODE_POD_CIDR@|$NODE_POD_CIDR|g" -e "s|@N@|$N|g" \
  -e "s|@CNI_NETWORK@|$CNI_NETWORK|g" \
  "$NODE_DIR/config/cni.conflist" >"$N/cni/net.d/10-modelops.conflist"
read -r KUBELET_HEALTHZ_PORT PROXY_HEALTHZ_PORT PROXY_METRICS_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
sed -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@N@|$N|g" -e "s|@PKI@|$PKI|g" -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" \
  -e "s|@STATE_DIR@|$STATE_DIR|g" \
  -e "s|@HEALTHZ_PORT@|$KUBELET_HEALTHZ_PORT|g" \
  "$NODE_DIR/config/kubelet.yaml" >"$N/kubelet.yaml"
sed -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@N@|$N|g" -e "s|@POD_CIDR@|$POD_CIDR|g" -e "s|@NODE_NAME@|$NODE_NAME|g" \
  -e "s|@HEALTHZ_PORT@|$PROXY_HEALTHZ_PORT|g" -e "s|@METRICS_PORT@|$PROXY_METRICS_PORT|g" \
  "$NODE_DIR/config/kube-proxy.yaml" >"$N/kube-proxy.yaml"
