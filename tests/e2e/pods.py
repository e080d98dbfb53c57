"""Running small pods on the real node and reading what they printed."""

from __future__ import annotations

import json

from tests.e2e.node import node_setting
from tests.support.kube import kubectl, kubectl_json, wait_for

POD_TIMEOUT_S = 90

# What Pod Security `restricted` demands, plus a read-only root: every test pod runs like this.
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                  "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}


def busybox_image() -> str:
    return node_setting("BUSYBOX_IMAGE")


def build_shell_pod(name: str, script: str, restart: str = "Never", **spec: object) -> dict:
    """A restricted busybox pod running `sh -c script`, its image already on the node."""
    container = {"name": "main", "image": busybox_image(), "imagePullPolicy": "Never",
                 "command": ["sh", "-c", script], "securityContext": RESTRICTED_CONTAINER,
                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    # The root filesystem is read-only: scratch space is an emptyDir.
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"restartPolicy": restart, "securityContext": RESTRICTED_POD,
                     "terminationGracePeriodSeconds": 1, "containers": [container],
                     "volumes": [{"name": "tmp", "emptyDir": {}}], **spec}}


def apply(namespace: str, *objects: dict) -> None:
    kubectl("-n", namespace, "apply", "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def pod_phase(namespace: str, name: str) -> str:
    return kubectl_json("-n", namespace, "get", "pod", name)["status"].get("phase", "")


def run_to_completion(namespace: str, name: str, script: str, **spec: object) -> tuple[str, str]:
    """Runs a one-shot shell pod; returns its final phase (Succeeded or Failed) and its log."""
    apply(namespace, build_shell_pod(name, script, **spec))
    phase = wait_for(lambda: (p := pod_phase(namespace, name)) in ("Succeeded", "Failed") and p,
                     POD_TIMEOUT_S, f"pod {namespace}/{name} to finish")
    return phase, kubectl("-n", namespace, "logs", name).stdout


def wait_ready(namespace: str, name: str) -> dict:
    """Waits for the pod's Ready condition and returns the pod."""
    def ready() -> dict | None:
        pod = kubectl_json("-n", namespace, "get", "pod", name)
        conditions = pod["status"].get("conditions", [])
        return pod if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else None

    return wait_for(ready, POD_TIMEOUT_S, f"pod {namespace}/{name} to be Ready")
