"""The real node: pods really run, with pod networking, Services, cluster DNS, API access and metrics,
behind a network safety net that keeps every packet on this machine; cluster-down restores the host.

No test here sends traffic to an address outside this machine: the safety net is checked by reading
nftables and the routing table (and the counters of rules that local traffic hits).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.node import (
    NODE_DIR, RealNode, host_state, link_names, nft_table, node_setting, pod_links, stop_real_node,
)
from tests.e2e.pods import apply, build_shell_pod, pod_phase, run_to_completion, wait_ready
from tests.support.kube import kubectl, kubectl_json, wait_for

SERVE_SCRIPT = "mkdir -p /tmp/www && echo \"hello from $(hostname)\" >/tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"


def test_node_registers_ready_with_its_own_identity(real_node: RealNode) -> None:
    nodes = kubectl_json("get", "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [real_node.name], "only the real node, no kwok nodes"
    node = nodes[0]
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    server = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == server
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == f"containerd://{node_setting('CONTAINERD_VERSION').removeprefix('v')}"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == node_setting("NODE_IP")
    # The node's credentials are confined by the Node authorizer: it may not read another node's pods' secrets.
    allowed = kubectl("auth", "can-i", "list", "secrets", "--as", f"system:node:{real_node.name}",
                      "--as-group", "system:nodes", check=False)
    assert allowed.stdout.startswith("no"), allowed.stdout


def test_restricted_pod_runs_confined(node_namespace: str) -> None:
    script = ("id -u; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; "
              "touch /written 2>/dev/null && echo root-writable || echo root-read-only")
    phase, log = run_to_completion(node_namespace, "confined", script)
    assert phase == "Succeeded", log
    lines = [line.split() for line in log.splitlines()]
    assert lines[0] == ["65532"]
    assert ["CapEff:", "0000000000000000"] in lines
    assert ["Seccomp:", "2"] in lines, "RuntimeDefault seccomp filter applied"
    assert ["NoNewPrivs:", "1"] in lines
    assert lines[-1] == ["root-read-only"]


def test_pod_security_refuses_a_privileged_pod(node_namespace: str) -> None:
    pod = build_shell_pod("privileged", "true")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    result = kubectl("-n", node_namespace, "apply", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0 and "restricted" in result.stderr, result.stderr


def test_services_and_headless_dns_route_between_pods(node_namespace: str) -> None:
    ns = node_namespace
    server = build_shell_pod("web-0", SERVE_SCRIPT, restart="Always", hostname="web-0", subdomain="workers")
    server["metadata"]["labels"] = {"app": "web"}
    server["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "workers"},
                "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 8080}]}}
    cluster_ip = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                  "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    apply(ns, headless, cluster_ip, server)
    pod_ip = wait_ready(ns, "web-0")["status"]["podIP"]
    # Names as MultiWorkerMirrored workers use them: <pod>.<headless service>.<namespace>.svc, and short.
    script = f"""
for i in $(seq 20); do nslookup web-0.workers.{ns}.svc.cluster.local >/tmp/ns 2>&1 && break; sleep 0.5; done
cat /tmp/ns
timeout 10 wget -q -O- http://web-0.workers.{ns}.svc:8080/ && echo headless-ok
timeout 10 wget -q -O- http://web-0.workers:8080/ && echo search-path-ok
timeout 10 wget -q -O- http://web/ && echo service-ok
nslookup example.com >/dev/null 2>&1 && echo outside-resolved || echo outside-not-resolved
"""
    phase, log = run_to_completion(ns, "client", script)
    assert phase == "Succeeded", log
    assert f"Address: {pod_ip}" in log, log
    for ok in ("headless-ok", "search-path-ok", "service-ok"):
        assert f"hello from web-0\n{ok}" in log, log
    assert "outside-not-resolved" in log, "CoreDNS has no upstream: names outside the cluster do not resolve"


def test_pod_reaches_api_server_through_kubernetes_service_with_its_token(node_namespace: str) -> None:
    endpoints = kubectl_json("-n", "default", "get", "endpoints", "kubernetes")
    assert [a["ip"] for a in endpoints["subsets"][0]["addresses"]] == [node_setting("NODE_IP")]
    review = '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'
    # sa-request: the mounted token, the mounted CA verified against https://kubernetes.default.svc.
    script = f"sa-request POST /apis/authentication.k8s.io/v1/selfsubjectreviews '{review}'"
    phase, log = run_to_completion(node_namespace, "api-client", script)
    assert phase == "Succeeded", log
    user = json.loads(log)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{node_namespace}:default"


def test_kubectl_logs_and_exec_reach_the_kubelet(node_namespace: str) -> None:
    apply(node_namespace, build_shell_pod("sleeper", "echo started; exec sleep 300", restart="Always"))
    wait_ready(node_namespace, "sleeper")
    logs = wait_for(lambda: kubectl("-n", node_namespace, "logs", "sleeper").stdout, 30, "sleeper's log")
    assert logs == "started\n"
    out = kubectl("-n", node_namespace, "exec", "sleeper", "--", "cat", "/etc/hostname").stdout
    assert out.strip() == "sleeper"


def test_metrics_server_serves_node_and_pod_metrics(real_node: RealNode) -> None:
    def node_metrics() -> dict | None:
        raw = kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False)
        items = json.loads(raw.stdout).get("items", []) if raw.returncode == 0 else []
        return next((i for i in items if i["metadata"]["name"] == real_node.name), None)

    metrics = wait_for(node_metrics, 90, "node metrics from metrics-server")
    assert metrics["usage"]["memory"].endswith("Ki")
    top = wait_for(lambda: kubectl("top", "pods", "-n", "kube-system", check=False).stdout, 90, "kubectl top pods")
    assert "coredns" in top


def _drop_rules(table: dict) -> dict[str, dict]:
    """comment -> rule, for every rule of the table that drops."""
    rules = [item["rule"] for item in table["nftables"] if "rule" in item]
    return {r.get("comment", ""): r for r in rules if any("drop" in e for e in r["expr"])}


def _packets(rule: dict) -> int:
    return next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)


def test_safety_net_is_in_place(real_node: RealNode) -> None:
    table = nft_table("inet", node_setting("NFT_TABLE"))
    assert table is not None, "the safety net's nftables table is missing"
    drops = _drop_rules(table)
    for comment in ("pods reach only pods", "nothing from outside is forwarded",
                    "nothing forwarded leaves the pod bridge (uplink included)", "no IPv6 forwarding",
                    "cluster ranges stay on this host", "cluster sources stay on this host",
                    "pods may not reach the kubelet", "node address reachable from this host only"):
        assert comment in drops, f"missing drop rule {comment!r}"
    hooks = {item["chain"]["name"]: item["chain"].get("hook") for item in table["nftables"] if "chain" in item}
    assert hooks == {"forward": "forward", "output": "output", "input": "input"}
    blackholes = {r["dst"] for r in json.loads(subprocess.run(
        ["ip", "-j", "route", "show", "type", "blackhole"], capture_output=True, text=True, check=True).stdout)}
    assert {node_setting(n) for n in ("POD_CIDR", "SERVICE_CIDR", "NODE_NET")} <= blackholes
    # Nothing the cluster did so far tried to reach beyond this host. (Bridged IPv6 link-local chatter
    # between pods, such as router solicitations, does hit "no IPv6 forwarding".)
    for comment in ("cluster ranges stay on this host", "cluster sources stay on this host",
                    "pods reach only pods", "nothing from outside is forwarded",
                    "nothing forwarded leaves the pod bridge (uplink included)"):
        assert _packets(drops[comment]) == 0, f"{comment}: {_packets(drops[comment])} packets dropped"
    assert nft_table("ip", "kube-proxy") is not None, "kube-proxy (nftables mode) programs Services"


def test_pods_cannot_reach_the_kubelet(node_namespace: str) -> None:
    def kubelet_drops() -> int:
        table = nft_table("inet", node_setting("NFT_TABLE"))
        return _packets(_drop_rules(table)["pods may not reach the kubelet"])

    before = kubelet_drops()
    script = f"timeout 5 wget -q -O- https://{node_setting('NODE_IP')}:10250/pods && echo reached || echo refused"
    phase, log = run_to_completion(node_namespace, "kubelet-prober", script)
    assert phase == "Succeeded" and "refused" in log.split() and "reached" not in log, log
    assert kubelet_drops() > before, "the attempt was dropped by the safety net"


def test_loading_an_image_twice_skips_it(real_node: RealNode) -> None:
    archive = f"{node_setting('NODE_IMAGE_DIR')}/busybox-{node_setting('BUSYBOX_VERSION')}.tar"
    assert "already present" in real_node.load_images(archive)
    assert node_setting("BUSYBOX_IMAGE") in real_node.ctr_images()


def test_a_loaded_image_without_registry_runs_as_pods_name_it(
    real_node: RealNode, node_namespace: str, tmp_path: Path,
) -> None:
    # The project's images are named like modelops/operator:TAG; the kubelet asks for docker.io/....
    name = "modelops-e2e/shell:1"
    archive = tmp_path / "shell.tar"
    subprocess.run([sys.executable, str(NODE_DIR / "oci_image.py"), "--name", name, "--out", str(archive),
                    "--entrypoint", "/bin/sh", "--file", "/bin/busybox:/bin/busybox", "--link", "/bin/sh:busybox",
                    "--link", "/bin/echo:busybox"], check=True, capture_output=True, timeout=60)
    try:
        assert "imported" in real_node.load_images(archive)
        assert f"docker.io/{name}" in real_node.ctr_images()
        pod = build_shell_pod("named", "echo from-loaded-image")
        pod["spec"]["containers"][0].update(image=name, imagePullPolicy="IfNotPresent")
        apply(node_namespace, pod)
        phase = wait_for(lambda: (p := pod_phase(node_namespace, "named")) in ("Succeeded", "Failed") and p,
                         90, "the pod from the loaded image to finish")
        assert phase == "Succeeded"
        assert kubectl("-n", node_namespace, "logs", "named").stdout == "from-loaded-image\n"
    finally:
        # containerd's store outlives the cluster: leave nothing of this test in it.
        real_node.ctr("images", "rm", name, f"docker.io/{name}")


@pytest.mark.real_node_teardown
def test_cluster_down_restores_the_host(real_node: RealNode) -> None:
    veths = pod_links()
    assert veths, "pods of earlier tests have veths on the bridge"
    stop_real_node(real_node)
    after, before = host_state(), dict(real_node.host_before)
    # Entries a killed earlier run left in CNI's cache are removed too, so none is the only right answer.
    assert after.pop("CNI cache entries") == []
    before.pop("CNI cache entries")
    assert after == before
    assert not set(veths) & link_names(), "pod veths left behind"
    leftovers = subprocess.run(["pgrep", "-af", str(real_node.state_dir)], capture_output=True, text=True).stdout
    assert leftovers == "", leftovers
    assert sorted(p.name for p in real_node.state_dir.iterdir()) == [".modelops-control-plane", "logs"]
