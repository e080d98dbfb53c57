#!/usr/bin/env bash
# Starts a local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
# (three simulated nodes) on 127.0.0.1 with free ports.
#
#   cluster-up.sh [STATE_DIR]    (default: <repo>/.cluster)
#
# STATE_DIR receives kubeconfig, logs/<component>.log, pids/<component>.pid, pki/ and etcd data.
# For a real node (hack/node/cluster-up.sh), MODELOPS_NODE_IP=<address of this host> makes the API server
# listen and advertise there (so pods reach it through the `kubernetes` Service) and start no kwok nodes.
# Prints `export KUBECONFIG=...` on stdout once every node is Ready and the default ServiceAccount exists.
# cluster-down.sh STATE_DIR stops it. On any failure the processes started so far are stopped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CONTROLPLANE_DIR/procs.sh"
REPO_DIR="$(cd "$CONTROLPLANE_DIR/../.." && pwd)"
STATE_DIR="${1:-$REPO_DIR/.cluster}"
STARTUP_TIMEOUT_S="${STARTUP_TIMEOUT_S:-90}"
NODE_IP="${MODELOPS_NODE_IP:-}"
API_ADDRESS="${NODE_IP:-127.0.0.1}"

log() { echo "cluster-up: $*" >&2; }
die() {
  log "FAILED: $*"
  for f in "$STATE_DIR"/logs/*.log; do [[ -e "$f" ]] && { log "--- tail of $f"; tail -n 15 "$f" >&2; }; done
  "$CONTROLPLANE_DIR/cluster-down.sh" "$STATE_DIR" --keep-logs >&2 || true
  log "component logs kept in $STATE_DIR/logs"
  exit 1
}

trap 'die "command failed (line $LINENO)"' ERR

for b in "${CONTROLPLANE_BINARIES[@]}"; do
  [[ -x "$BIN_DIR/$b" ]] || { log "$BIN_DIR/$b is missing: run 'make controlplane' first"; exit 1; }
done
if [[ -e "$STATE_DIR/pids" ]]; then
  log "$STATE_DIR already holds a control plane; run cluster-down.sh $STATE_DIR first"
  exit 1
fi
# cluster-down.sh deletes the state directory, so only an empty one or one of ours is accepted.
if [[ -d "$STATE_DIR" && ! -e "$STATE_DIR/$STATE_MARKER" && -n "$(ls -A "$STATE_DIR")" ]]; then
  log "$STATE_DIR is not empty and not a control-plane state directory; choose another"
  exit 1
fi
mkdir -p "$STATE_DIR"
touch "$STATE_DIR/$STATE_MARKER"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
mkdir -p "$STATE_DIR"/{logs,pids,pki}
mkdir -m 700 "$STATE_DIR/etcd"
started_at=$(date +%s.%N)

read -r ETCD_PORT ETCD_PEER_PORT API_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)

deadline=$(( $(date +%s) + STARTUP_TIMEOUT_S ))

# Credentials, fresh for every cluster: a CA (also signs CSRs and is the root CA pods see), the API
# server's serving certificate, the key that signs ServiceAccount tokens, and an admin token
# (group system:masters).
PKI="$STATE_DIR/pki"
ec_key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec_key[@]}" -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 30 -subj "/CN=modelops-test-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${ec_key[@]}" -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" -subj "/CN=kube-apiserver" 2>/dev/null
openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 30 \
  -out "$PKI/apiserver.crt" 2>/dev/null -extfile <(
  echo "subjectAltName=IP:127.0.0.1,${NODE_IP:+IP:$NODE_IP,}IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  echo "keyUsage=critical,digitalSignature,keyEncipherment"
  echo "extendedKeyUsage=serverAuth")
openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$ADMIN_TOKEN,modelops-admin,modelops-admin,\"system:masters\"" >"$PKI/tokens.csv"
# A client certificate signed by a CA: `issue NAME SUBJECT [CA]` writes NAME.key and NAME.crt.
issue() {
  local ca=${3:-ca}
  openssl req "${ec_key[@]}" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial -days 30 \
    -out "$PKI/$1.crt" 2>/dev/null -extfile <(echo "keyUsage=critical,digitalSignature"; echo "extendedKeyUsage=clientAuth")
}
REAL_NODE_ARGS=()
if [[ -n "$NODE_IP" ]]; then
  # The API server reaches the kubelet (logs, exec) with a client certificate, and aggregated APIs
  # (metrics-server) through the front proxy: their own CA, as kubeadm sets it up.
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  openssl req -x509 "${ec_key[@]}" -keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" -days 30 \
    -subj "/CN=modelops-front-proxy-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  issue front-proxy-client "/CN=front-proxy-client" front-proxy-ca
  # The endpoint reconciler publishes NODE_IP:port as the `kubernetes` Service's endpoint.
  REAL_NODE_ARGS=(
    --endpoint-reconciler-type=lease
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt"
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
    --kubelet-certificate-authority="$PKI/ca.crt"
    --kubelet-preferred-address-types=InternalIP
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt"
    --requestheader-allowed-names=front-proxy-client
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group
    --requestheader-extra-headers-prefix=X-Remote-Extra-
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key"
    --enable-aggregator-routing=true
  )
else
  # The reconciler would try to publish 127.0.0.1 as the `kubernetes` Service's endpoint, which
  # endpoint validation refuses.
  REAL_NODE_ARGS=(--endpoint-reconciler-type=none)
fi
chmod 600 "$PKI"/*.key "$PKI/tokens.csv"

start etcd "$BIN_DIR/etcd" \
  --name=modelops --data-dir="$STATE_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="modelops=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true --log-level=warn
etcd_healthy() { curl -sf "http://127.0.0.1:$ETCD_PORT/health"; }
wait_until "etcd healthy" etcd_healthy etcd

# Default admission plugins stay on (NamespaceLifecycle, ServiceAccount, PodSecurity, ResourceQuota, ...).
# OwnerReferencesPermissionEnforcement is on as in OpenShift and many hardened clusters: setting
# blockOwnerDeletion on a child needs `update` on the owner's finalizers subresource.
# Privileged containers are allowed cluster-wide, as in kubeadm clusters, so Pod Security decides.
start kube-apiserver "$BIN_DIR/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address="$API_ADDRESS" --advertise-address="$API_ADDRESS" --secure-port="$API_PORT" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=OwnerReferencesPermissionEnforcement \
  --allow-privileged=true \
  --token-auth-file="$PKI/tokens.csv" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.key" \
  --service-account-signing-key-file="$PKI/sa.key" \
  "${REAL_NODE_ARGS[@]}" \
  --audit-policy-file="$CONTROLPLANE_DIR/audit-policy.yaml" \
  --audit-log-path="$STATE_DIR/logs/audit.log" --audit-log-format=json \
  --profiling=false
API_URL="https://$API_ADDRESS:$API_PORT"
apiserver_ready() { curl -sf --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL/readyz"; }
wait_until "kube-apiserver ready" apiserver_ready etcd kube-apiserver

KUBECONFIG_FILE="$STATE_DIR/kubeconfig"
umask 077
cat >"$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
- name: modelops
  cluster:
    server: $API_URL
    certificate-authority: $PKI/ca.crt
users:
- name: modelops-admin
  user:
    token: $ADMIN_TOKEN
contexts:
- name: modelops
  context: {cluster: modelops, user: modelops-admin}
current-context: modelops
KC
umask 022
kubectl() { "$BIN_DIR/kubectl" --kubeconfig="$KUBECONFIG_FILE" "$@"; }

# The controllers' client rate limit; empty keeps Kubernetes' default (20 requests/s), as a stock cluster has.
# The operator benchmark raises it to show how much of its wall time the Job controller's limit accounts for.
KCM_RATE=()
[[ -n "${MODELOPS_KCM_QPS:-}" ]] && KCM_RATE=(--kube-api-qps="$MODELOPS_KCM_QPS" --kube-api-burst="$((2 * MODELOPS_KCM_QPS))")
# The HPA's scale-down waits 5 minutes after the last recommendation above the current size (Kubernetes'
# default); MODELOPS_HPA_DOWNSCALE_S shortens it so a test can watch a scale-down. Empty keeps the default.
HPA_FLAGS=()
[[ -n "${MODELOPS_HPA_DOWNSCALE_S:-}" ]] && HPA_FLAGS=(--horizontal-pod-autoscaler-downscale-stabilization="${MODELOPS_HPA_DOWNSCALE_S}s")
start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG_FILE" \
  --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
  --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false \
  --use-service-account-credentials=true "${KCM_RATE[@]}" "${HPA_FLAGS[@]}" \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --profiling=false
start kube-scheduler "$BIN_DIR/kube-scheduler" \
  --kubeconfig="$KUBECONFIG_FILE" \
  --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
  --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false \
  --profiling=false
if [[ -z "$NODE_IP" ]]; then
  start kwok "$BIN_DIR/kwok" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --config="$CONTROLPLANE_DIR/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr=10.244.0.0/16 --node-ip=10.240.0.1 \
    --node-lease-duration-seconds=40

  kubectl apply -f "$CONTROLPLANE_DIR/nodes.yaml" >/dev/null || die "could not create the kwok nodes"
  all=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
  nodes_ready() { kubectl wait --for=condition=Ready nodes --all --timeout=1s; }
  wait_until "all nodes Ready" nodes_ready "${all[@]}"
else
  # The real node (hack/node/node-up.sh) registers itself after this.
  all=(etcd kube-apiserver kube-controller-manager kube-scheduler)
fi
default_serviceaccount() { kubectl -n default get serviceaccount default; }
wait_until "default ServiceAccount exists" default_serviceaccount "${all[@]}"

echo "$API_URL" >"$STATE_DIR/server"
log "control plane up in $STATE_DIR; logs in $STATE_DIR/logs"
echo "export KUBECONFIG=$KUBECONFIG_FILE"
