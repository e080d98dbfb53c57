"""End-to-end tests on a real node: real containers started by a real kubelet next to the control plane.

One node per test session (hack/node/cluster-up.sh, the same script as `make cluster-up REAL_NODE=1`),
torn down at the end of the session with hack/controlplane/cluster-down.sh. Needs root and the node's
parts built (`make node`). Only one real node can run per machine (fixed addresses and links).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.node import NODE_DIR, RealNode, start_real_node, stop_real_node
# The pipeline's fixtures: defined once here, so the session-wide ones exist once per session.
from tests.e2e.pipeline_fixtures import model_namespace, node_images, operator_release  # noqa: F401
from tests.support.kube import kubeconfig_env, kubectl, wait_for

E2E_DIR = Path(__file__).parent
# Fixed addresses and links allow one real node per machine: test sessions of other checkouts queue here.
MACHINE_LOCK = Path("/run/lock/modelops-real-node.lock")
# Tests marked so stop the session's node: they run after every other e2e test.
LAST_MARK = "real_node_teardown"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    e2e = [item for item in items if E2E_DIR in item.path.parents]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    last = [item for item in e2e if item.get_closest_marker(LAST_MARK)]
    if not last:
        return
    rest = [item for item in items if item not in last]
    after = max((i for i, item in enumerate(rest) if E2E_DIR in item.path.parents), default=len(rest) - 1)
    items[:] = rest[:after + 1] + last + rest[after + 1:]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LAST_MARK}: stops the session's real node; runs after the other e2e tests")


@pytest.fixture(scope="session")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    """Starts the control plane with one real node and points KUBECONFIG at it; stops both afterwards.

    Component and container logs stay in the yielded node's state_dir/logs after the session."""
    if os.geteuid() != 0:
        pytest.fail("the real node needs root (network, mounts, cgroups)")
    missing = subprocess.run([str(NODE_DIR / "missing.sh")], capture_output=True, text=True, check=False)
    if missing.returncode != 0:
        pytest.fail(f"the node's parts are not built: run `make node`\n{missing.stdout}{missing.stderr}")
    MACHINE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with MACHINE_LOCK.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {MACHINE_LOCK}: another test session runs the real node", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        node = start_real_node(tmp_path_factory.mktemp("real-node") / "cluster")
        try:
            with kubeconfig_env(node.kubeconfig):
                yield node
        finally:
            stop_real_node(node)


@pytest.fixture
def node_namespace(real_node: RealNode, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security `restricted`, with its default ServiceAccount."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    wait_for(lambda: kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
             timeout=30, describe=f"the default ServiceAccount in namespace {name}")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
