"""What the pipeline's end-to-end tests share on the real node: our images in the node's containerd, the
operator installed by its Helm chart (running as a pod), and a Pod Security "restricted" namespace with
model storage.

Images are built from the project's Dockerfiles (hack/images/build-all.sh, cached by content) and imported
into the node's containerd (hack/node/load-image.sh); pods then find them under the names the chart and
the operator use by default, with `IfNotPresent`.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e.pods import RESTRICTED_CONTAINER, RESTRICTED_POD
from tests.support.kube import REPO_ROOT, kubectl, kubectl_json, tool, wait_for

CHART = REPO_ROOT / "manifests" / "helm" / "modelops"
RELEASE_NAMESPACE = "modelops-system"
# The UID/GID the generated pods run as by default (the images' USER); hostPath volumes ignore fsGroup,
# so the storage directory is made theirs, as an administrator of NFS-type storage would.
POD_UID = RESTRICTED_POD["runAsUser"]
IMAGE_BUILD_TIMEOUT_S = 3600
READY_TIMEOUT_S = 900
E2E_DIR = Path(__file__).parent
# Measured durations (apply->Ready, rollouts), for docs/e2e.md.
TIMINGS = REPO_ROOT / "out" / "e2e-timings.json"


def image_refs() -> dict[str, str]:
    """NAME_IMAGE -> name:tag, from images.env (the images' one source)."""
    env = dict(line.split("=", 1) for line in (REPO_ROOT / "images.env").read_text().splitlines()
               if line and not line.startswith("#"))
    tag = env["IMAGE_TAG"]
    return {key: f"{value}:{tag}" for key, value in env.items() if key.endswith("_IMAGE")}


def record_timing(key: str, seconds: float) -> None:
    TIMINGS.parent.mkdir(exist_ok=True)
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings[key] = round(seconds, 1)
    TIMINGS.write_text(json.dumps(timings, indent=2) + "\n")


def script_command(script: str, *args: str) -> list[str]:
    """`python3 -c <script> args…`: the client scripts travel in the pod spec, no image of their own."""
    return ["python3", "-c", (E2E_DIR / script).read_text(), *args]


def send_labeled(namespace: str, pod: str, model: str, rows: list, truth: list, batch: int,
                 max_seconds: int = 120) -> dict:
    """Rows with their truth to the model's Service from a pod, by the users' own script (examples/traffic.py):
    each batch predicted and joined in one feedback call, on a connection of its own. Its summary line."""
    command = ["python3", "-c", (REPO_ROOT / "examples" / "traffic.py").read_text(),
               "--url", f"http://{model}.{namespace}.svc.cluster.local", "--model", model,
               "--data", json.dumps({"rows": rows, "truth": truth}), "--batch", str(batch),
               "--rate", "1000", "--max-seconds", str(max_seconds)]
    log = run_pod(namespace, pod, image_refs()["SERVING_IMAGE"], command, timeout=max_seconds + 120)
    return json.loads(log.strip().splitlines()[-1])


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


@pytest.fixture(scope="session")
def node_images(real_node) -> dict[str, str]:
    """The three images, built from our Dockerfiles (cached: `make images-local` ran before the tests)
    and imported into the node's containerd."""
    archives = _run([str(REPO_ROOT / "hack" / "images" / "build-all.sh")], IMAGE_BUILD_TIMEOUT_S).split()
    real_node.load_images(*map(Path, archives))
    return image_refs()


@pytest.fixture(scope="session")
def operator_release(real_node, node_images) -> str:
    """`helm install` of the chart: the operator runs as a pod with the chart's ServiceAccount and RBAC."""
    refs = node_images
    operator_repo, operator_tag = refs["OPERATOR_IMAGE"].rsplit(":", 1)
    env = {**os.environ, "KUBECONFIG": str(real_node.kubeconfig)}
    _run(
        [str(tool("helm")), "install", "modelops", str(CHART), "--namespace", RELEASE_NAMESPACE,
         "--create-namespace", "--wait", "--timeout", "5m",
         "--set", f"image.repository={operator_repo}", "--set", f"image.tag={operator_tag}",
         "--set", f"defaults.trainingImage={refs['TRAINING_IMAGE']}",
         "--set", f"defaults.servingImage={refs['SERVING_IMAGE']}"],
        timeout=400, env=env)
    wait_for(lambda: kubectl("-n", RELEASE_NAMESPACE, "rollout", "status", "deployment", "--timeout=5s",
                             check=False).returncode == 0, timeout=300, describe="the operator pod to be Ready")
    return RELEASE_NAMESPACE


@dataclass(frozen=True)
class ModelNamespace:
    name: str
    storage_dir: Path     # the host directory behind the `models` claim

    def version_dir(self, model: str, version: str) -> Path:
        """Versions live under the resource's uid: <storage>/<namespace>/<model>/<uid>/<version>."""
        uid = kubectl_json("get", f"md/{model}", "-n", self.name)["metadata"]["uid"]
        return self.storage_dir / self.name / model / uid / version


def restricted_namespace(prefix: str) -> str:
    """A namespace that enforces Pod Security "restricted" (every pod we create must pass it)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest")
    wait_for(lambda: kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
             timeout=30, describe=f"the default ServiceAccount in {name}")
    return name


def create_models_claim(namespace: str, host_dir: Path) -> None:
    """The examples' claim `models`, bound to a hostPath volume on the node owned by the pods' UID."""
    host_dir.mkdir(parents=True, exist_ok=True)
    os.chown(host_dir, POD_UID, POD_UID)
    host_dir.chmod(0o775)
    volume = f"models-{namespace}"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
        "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": "",
                 "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": str(host_dir), "type": "Directory"},
                 "claimRef": {"namespace": namespace, "name": "models"}}}))
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "models"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": volume,
                 "resources": {"requests": {"storage": "2Gi"}}}}))
    wait_for(lambda: kubectl_json("get", "pvc/models", "-n", namespace)["status"].get("phase") == "Bound",
             timeout=60, describe="claim models to bind")


@pytest.fixture(scope="module")
def model_namespace(real_node, operator_release, tmp_path_factory) -> Iterator[ModelNamespace]:
    name = restricted_namespace("e2e")
    storage = tmp_path_factory.mktemp("models")
    storage.chmod(0o755)
    create_models_claim(name, storage)
    yield ModelNamespace(name, storage)
    kubectl("delete", "namespace", name, "--wait=false", check=False)
    kubectl("delete", "pv", f"models-{name}", "--wait=false", check=False)


def example(path: str, *overrides: dict) -> dict:
    """An example ModelDeployment with each of `overrides` merged into its spec in turn (dicts merge, the
    rest replaces)."""
    doc = yaml.safe_load((REPO_ROOT / "examples" / path).read_text())
    for override in overrides:
        _merge(doc["spec"], override)
    return doc


def _merge(into: dict, changes: dict) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def apply(namespace: str, doc: dict) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))


def wait_ready(namespace: str, name: str, timeout: float) -> float:
    """Waits for the ModelDeployment's Ready condition; returns the seconds it took."""
    started = time.monotonic()
    def ready() -> bool:
        md = kubectl_json("get", "md", name, "-n", namespace)
        conditions = {c["type"]: c for c in md.get("status", {}).get("conditions", [])}
        if md.get("status", {}).get("phase") == "Failed":
            raise AssertionError(f"{name} Failed: {md['status'].get('message')}")
        return conditions.get("Ready", {}).get("status") == "True"
    wait_for(ready, timeout=timeout, interval=1, describe=f"md/{name} Ready")
    return time.monotonic() - started


def client_pod(name: str, image: str, command: list[str], cpu: str = "200m") -> dict:
    """A restricted-profile pod that runs `command` once (a test's client inside the cluster)."""
    container = {"name": "client", "image": image, "imagePullPolicy": "IfNotPresent", "command": command,
                 "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                 "securityContext": RESTRICTED_CONTAINER}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "e2e-client"}},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "securityContext": RESTRICTED_POD, "containers": [container]}}


def start_pod(namespace: str, name: str, image: str, command: list[str], cpu: str = "200m") -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(client_pod(name, image, command, cpu)))


def pod_result(namespace: str, name: str, timeout: float) -> str:
    """Waits for a client pod to finish and returns its log; fails if it did not succeed."""
    def finished() -> str | None:
        phase = kubectl_json("get", "pod", name, "-n", namespace).get("status", {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None
    phase = wait_for(finished, timeout=timeout, interval=1, describe=f"pod {name} to finish")
    log = kubectl("-n", namespace, "logs", name).stdout
    if phase != "Succeeded":
        raise AssertionError(f"pod {name} {phase}:\n{log[-3000:]}")
    return log


def run_pod(namespace: str, name: str, image: str, command: list[str], timeout: float, cpu: str = "200m") -> str:
    start_pod(namespace, name, image, command, cpu)
    return pod_result(namespace, name, timeout)
