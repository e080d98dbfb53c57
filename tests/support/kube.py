"""Talking to the local control plane from tests.

The control plane is started by hack/controlplane/cluster-up.sh (the same script as `make cluster-up`);
tests/integration/conftest.py starts one per test session and points KUBECONFIG at it. The helpers here
use that KUBECONFIG and the kubectl built at the pinned version. See docs/control-plane.md.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import kubernetes
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROLPLANE_DIR = REPO_ROOT / "hack" / "controlplane"

# What a Job pod does is decided by these annotations; kwok's pod-job-finish Stage
# (hack/controlplane/kwok-stages.yaml) reads them.
EXIT_CODE_ANNOTATION = "kwok.modelops.io/exit-code"
TERMINATION_MESSAGE_ANNOTATION = "kwok.modelops.io/termination-message"
REASON_ANNOTATION = "kwok.modelops.io/reason"

STARTUP_TIMEOUT_S = 180
KUBECTL_TIMEOUT_S = 60

T = TypeVar("T")


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane: its state directory holds the kubeconfig, pki and logs."""

    state_dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"


def start_control_plane(state_dir: Path) -> ControlPlane:
    """Starts a control plane in `state_dir` and returns once every node is Ready."""
    result = subprocess.run(
        [str(CONTROLPLANE_DIR / "cluster-up.sh"), str(state_dir)],
        capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cluster-up.sh failed (exit {result.returncode}):\n{result.stderr}")
    return ControlPlane(state_dir)


def stop_control_plane(plane: ControlPlane) -> None:
    """Stops every process of `plane` and removes its state, keeping the component logs."""
    subprocess.run(
        [str(CONTROLPLANE_DIR / "cluster-down.sh"), str(plane.state_dir), "--keep-logs"],
        capture_output=True, text=True, timeout=60, check=True,
    )


@functools.cache
def tool(name: str) -> Path:
    """Path of a control-plane binary (kubectl, helm, ...) built at the pinned versions."""
    bin_dir = subprocess.run(
        [str(CONTROLPLANE_DIR / "bin-dir.sh")], capture_output=True, text=True, check=True,
    ).stdout.strip()
    path = Path(bin_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make controlplane`")
    return path


def kubeconfig() -> str:
    try:
        return os.environ["KUBECONFIG"]
    except KeyError:
        raise RuntimeError("KUBECONFIG is not set: use the control_plane fixture or `make cluster-up`") from None


@contextlib.contextmanager
def kubeconfig_env(path: Path) -> Iterator[None]:
    """Points KUBECONFIG (which kubectl() and api_client() read) at `path` for the duration."""
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call; its message carries kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs kubectl against the session's cluster; raises with kubectl's stderr when `check` and it fails."""
    result = subprocess.run(
        [str(tool("kubectl")), f"--kubeconfig={kubeconfig()}", *args],
        input=input, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False,
    )
    if check and result.returncode != 0:
        raise KubectlError(result.returncode, result.args, output=result.stdout, stderr=result.stderr)
    return result


def kubectl_json(*args: str) -> dict:
    """Runs `kubectl <args> -o json` and returns the parsed object."""
    return json.loads(kubectl(*args, "-o", "json").stdout)


def api_client(impersonate: str | None = None) -> kubernetes.client.ApiClient:
    """A new `kubernetes` ApiClient for the session's cluster: the cluster admin, or the user it impersonates.

    `impersonate` is a user name such as "system:serviceaccount:<namespace>:<name>"; RBAC then
    judges every request as that user (a ServiceAccount also gets its groups).
    """
    client = kubernetes.config.new_client_from_config(config_file=kubeconfig())
    if impersonate is not None:
        client.set_default_header("Impersonate-User", impersonate)
    return client


def write_serviceaccount_kubeconfig(namespace: str, name: str, path: Path, duration: str = "1h") -> Path:
    """Writes a kubeconfig at `path` that authenticates as ServiceAccount `namespace/name` (a bound token).

    For running a process (e.g. the operator) exactly as it runs in the cluster, under that account's RBAC.
    """
    token = kubectl("-n", namespace, "create", "token", name, f"--duration={duration}").stdout.strip()
    admin = yaml.safe_load(Path(kubeconfig()).read_text())
    user = f"system:serviceaccount:{namespace}:{name}"
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": admin["clusters"][0]["name"], "user": user,
                                                "namespace": namespace}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    describe: str,
    interval: float = 0.2,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Polls `predicate` until it returns something truthy, and returns that.

    Exceptions of the types in `ignoring` count as "not yet". Raises AssertionError naming `describe`
    and the last value seen once `timeout` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = predicate()
        except ignoring as error:
            last = error
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {describe}; last seen: {last!r}")
        time.sleep(interval)


def finish_pod(
    namespace: str,
    pod_name: str,
    exit_code: int = 0,
    message: str | None = None,
    reason: str | None = None,
) -> None:
    """Makes kwok terminate a Running pod owned by a Job.

    Exit code 0 -> the pod Succeeds; otherwise it Fails with that exit code. `message` becomes each
    container's state.terminated.message (how a training pod reports its stage); `reason` its reason
    (default Completed or Error). Pods not owned by a Job ignore these annotations.
    """
    if isinstance(exit_code, bool) or not isinstance(exit_code, int) or not 0 <= exit_code <= 255:
        raise ValueError(f"exit_code must be an int in 0..255, got {exit_code!r}")
    annotations = {EXIT_CODE_ANNOTATION: str(exit_code)}
    if message is not None:
        annotations[TERMINATION_MESSAGE_ANNOTATION] = message
    if reason is not None:
        annotations[REASON_ANNOTATION] = reason
    patch = {"metadata": {"annotations": annotations}}
    kubectl("-n", namespace, "patch", "pod", pod_name, "--type=merge", "-p", json.dumps(patch))


def job_pod_names(namespace: str, job_name: str) -> list[str]:
    """Names of the pods the Job controller created for `job_name`, oldest first."""
    out = kubectl(
        "-n", namespace, "get", "pods", "-l", f"batch.kubernetes.io/job-name={job_name}",
        "--sort-by=.metadata.creationTimestamp", "-o", "jsonpath={.items[*].metadata.name}",
    ).stdout
    return out.split()


def create_bound_claim(namespace: str, claim: str, volume: str, access_mode: str = "ReadWriteMany") -> None:
    """A PersistentVolumeClaim (ReadWriteMany unless told) bound to a hostPath PersistentVolume made for it,
    as a real cluster's storage would provide; returns once the claim is Bound."""
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": [access_mode], "storageClassName": "",
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/{volume}"},
                 "claimRef": {"namespace": namespace, "name": claim}}}))
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
        "spec": {"accessModes": [access_mode], "storageClassName": "", "volumeName": volume,
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    wait_for(lambda: kubectl_json("get", f"pvc/{claim}", "-n", namespace)["status"].get("phase") == "Bound",
             timeout=30, describe=f"claim {claim} to bind")
