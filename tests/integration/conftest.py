"""Integration tests run against one real control plane per test session, a fresh namespace per test."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from tests.support.kube import (
    ControlPlane, api_client, kubectl, start_control_plane, stop_control_plane, wait_for,
)

# Shared fixtures of the operator and chart tests: the CRD, a bound storage claim, the operator process.
from tests.integration.crd_fixtures import crd  # noqa: E402,F401
from tests.integration.operator_fixtures import operator, storage  # noqa: E402,F401

INTEGRATION_DIR = Path(__file__).parent
CONTROL_PLANE_KEY = pytest.StashKey[ControlPlane]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    plane = item.config.stash.get(CONTROL_PLANE_KEY, None)
    if report.failed and plane is not None and INTEGRATION_DIR in item.path.parents:
        report.sections.append(("control plane", f"component logs: {plane.logs_dir}/<component>.log"))
    return report


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """Starts the control plane (hack/controlplane/cluster-up.sh) and points KUBECONFIG at it."""
    plane = start_control_plane(tmp_path_factory.mktemp("controlplane"))
    request.config.stash[CONTROL_PLANE_KEY] = plane
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    try:
        yield plane
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        stop_control_plane(plane)


@pytest.fixture(scope="session")
def k8s_client(control_plane: ControlPlane) -> Iterator[kubernetes.client.ApiClient]:
    """A `kubernetes` ApiClient for the session's cluster, as the cluster admin."""
    with api_client() as client:
        yield client


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, with its default ServiceAccount; deleted afterwards (not waited on)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    # The ServiceAccount admission plugin refuses pods until the namespace's default ServiceAccount exists.
    wait_for(lambda: kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
             timeout=30, describe=f"the default ServiceAccount in namespace {name}")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
