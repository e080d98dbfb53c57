"""The real node from tests: start and stop it, find its tools and images, and read the host's state.

hack/node/cluster-up.sh starts it (the same script as `make cluster-up REAL_NODE=1`);
hack/controlplane/cluster-down.sh stops it and restores the host. Names and addresses come from
hack/node/lib.sh, read through bash so there is one source.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.kube import CONTROLPLANE_DIR, REPO_ROOT, tool

NODE_DIR = REPO_ROOT / "hack" / "node"
START_TIMEOUT_S = 300
STOP_TIMEOUT_S = 180
# The autoscaling test watches a scale-down; Kubernetes' default stabilisation window is 5 minutes.
HPA_DOWNSCALE_S = 30


@functools.cache
def node_setting(name: str) -> str:
    """A variable of hack/node/lib.sh (NODE_IP, POD_CIDR, BUSYBOX_IMAGE, NODE_BIN_DIR, ...)."""
    script = f'source "{NODE_DIR}/lib.sh" && declare -p {name} >/dev/null && printf %s "${{{name}[*]}}"'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KeyError(f"hack/node/lib.sh does not set {name}: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class RealNode:
    """A running control plane with one real node; its state directory holds kubeconfig, pki, logs, node/."""

    state_dir: Path
    host_before: dict[str, object] = field(compare=False, default_factory=dict)  # host_state() before start

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def kubectl(self) -> Path:
        return tool("kubectl")

    @property
    def helm(self) -> Path:
        return tool("helm")

    @property
    def ctr_path(self) -> Path:
        return Path(node_setting("NODE_BIN_DIR")) / "ctr"

    @property
    def containerd_address(self) -> Path:
        return self.state_dir / "node" / "containerd" / "containerd.sock"

    @property
    def name(self) -> str:
        return node_setting("NODE_NAME")

    def load_images(self, *archives: Path) -> str:
        """Imports OCI archives into the node's containerd (hack/node/load-image.sh); returns its report."""
        result = subprocess.run(
            [str(NODE_DIR / "load-image.sh"), *map(str, archives)], capture_output=True, text=True,
            timeout=600, check=False, env={**os.environ, "CONTAINERD_ADDRESS": str(self.containerd_address)},
        )
        if result.returncode != 0:
            raise RuntimeError(f"load-image.sh failed (exit {result.returncode}):\n{result.stderr}")
        return result.stdout

    def ctr(self, *args: str) -> str:
        """Runs ctr against the node's containerd in namespace k8s.io (the kubelet's); returns its output."""
        return subprocess.run(
            [str(self.ctr_path), "--address", str(self.containerd_address), "-n", "k8s.io", *args],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout

    def ctr_images(self) -> dict[str, str]:
        """Image name -> manifest digest, as the node's containerd lists them."""
        out = self.ctr("images", "ls")
        return {line.split()[0]: line.split()[2] for line in out.splitlines()[1:] if line.strip()}


def start_real_node(state_dir: Path) -> RealNode:
    before = host_state()
    result = subprocess.run(
        [str(NODE_DIR / "cluster-up.sh"), str(state_dir)],
        capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
        env={**os.environ, "MODELOPS_HPA_DOWNSCALE_S": str(HPA_DOWNSCALE_S)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"hack/node/cluster-up.sh failed (exit {result.returncode}):\n{result.stderr}")
    return RealNode(state_dir, before)


def stop_real_node(node: RealNode) -> None:
    """Stops the node and the control plane and restores the host, keeping the component logs."""
    if not node.state_dir.exists() or not (node.state_dir / "node").exists():
        return
    subprocess.run(
        [str(CONTROLPLANE_DIR / "cluster-down.sh"), str(node.state_dir), "--keep-logs"],
        capture_output=True, text=True, timeout=STOP_TIMEOUT_S, check=True,
    )


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout


def nft_table(family: str, name: str) -> dict | None:
    """The table's rules as `nft -j` lists them (a list of {"rule": ...}), or None when there is no table."""
    result = subprocess.run(["nft", "-j", "list", "table", family, name], capture_output=True, text=True,
                            timeout=30, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


def host_state() -> dict[str, object]:
    """What the real node may change on this host, restricted to what is ours, for before/after comparison."""
    prefixes = (node_setting("NODE_LINK"), node_setting("POD_BRIDGE"))
    links = sorted(link["ifname"] for link in json.loads(_run("ip", "-j", "link", "show"))
                   if link["ifname"].startswith(prefixes))
    ranges = set(node_setting(n) for n in ("POD_CIDR", "SERVICE_CIDR", "NODE_NET", "NODE_POD_CIDR"))
    routes = sorted(r["dst"] for r in json.loads(_run("ip", "-j", "route", "show")) if r["dst"] in ranges)
    # All of them: the kubelet's iptables-nft calls create tables (ip6 mangle, ...) that must go too.
    tables = sorted(_run("nft", "list", "tables").splitlines())
    chains = sorted(line for ipt in ("iptables", "ip6tables") for table in ("filter", "nat", "mangle")
                    for line in _iptables(ipt, table) if "KUBE-" in line)
    watched = (str(Path(node_setting("CONTAINERD_ROOT"))), *node_setting("NODE_FIXED_PATHS").split())
    mounts = sorted(m for m in _run("findmnt", "-rn", "-o", "TARGET").splitlines() if m.startswith(watched))
    sysctls = {s: _run("sysctl", "-n", s).strip() for s in node_setting("NODE_SYSCTLS").split()}
    paths = sorted(p for p in node_setting("NODE_FIXED_PATHS").split() if Path(p).exists())
    cgroups = sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/modelops-node"))
    cni_cache = sorted(str(p) for p in Path(node_setting("CNI_CACHE_DIR")).glob(f"**/{node_setting('CNI_NETWORK')}-*"))
    return {"links": links, "routes": routes, "nft tables": tables, "iptables KUBE- rules": chains,
            "mounts": mounts, "sysctls": sysctls, "fixed paths": paths, "cgroups": cgroups,
            "CNI cache entries": cni_cache}


def link_names() -> set[str]:
    return {link["ifname"] for link in json.loads(_run("ip", "-j", "link", "show"))}


def pod_links() -> list[str]:
    """The pods' veth ends on the host: the links enslaved to the node's bridge."""
    bridge = node_setting("POD_BRIDGE")
    return sorted(link["ifname"] for link in json.loads(_run("ip", "-j", "link", "show"))
                  if link.get("master") == bridge)


def _iptables(binary: str, table: str) -> list[str]:
    result = subprocess.run([binary, "-w", "-t", table, "-S"], capture_output=True, text=True, timeout=30,
                            check=False)
    return result.stdout.splitlines() if result.returncode == 0 else []
