"""The multi-worker example on the real node: two TensorFlow worker pods train together over the Job's
headless Service (TF_CONFIG names `<job>-<i>.<job>-workers.<ns>.svc`, resolved by CoreDNS), only the
chief writes the version; then the HorizontalPodAutoscaler, fed by metrics-server, scales the serving
Deployment up under a bounded load and back down after it.
"""
from __future__ import annotations

import json

import pytest

from modelops_contracts import manifest as artifact_manifest
from tests.e2e.pipeline_fixtures import (
    READY_TIMEOUT_S, ModelNamespace, apply, example, image_refs,
    record_timing, script_command, start_pod, wait_ready,
)
from tests.support.kube import kubectl, kubectl_json, wait_for

# The first test also waits for the session's node, image import, operator install and the first training.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

MODEL = "diabetes"
MIN_REPLICAS = 2
# Small requests, so the autoscaler's utilisation (usage / request) crosses its target under a modest load
# and six replicas still fit on the node's 2 CPUs.
DIABETES_ON_TWO_CPUS = {
    "training": {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}},
    "serving": {"autoscaling": {"minReplicas": MIN_REPLICAS, "maxReplicas": 4, "targetCPUUtilization": 50},
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}}},
}


@pytest.fixture(scope="module")
def diabetes(model_namespace: ModelNamespace) -> ModelNamespace:
    apply(model_namespace.name, example("diabetes-multiworker.yaml", DIABETES_ON_TWO_CPUS))
    record_timing("diabetes (2 workers) apply->Ready (s)", wait_ready(model_namespace.name, MODEL, READY_TIMEOUT_S))
    return model_namespace


def serving_deployment(ns: str) -> dict:
    return kubectl_json("get", "deployment", MODEL, "-n", ns)


def test_two_worker_pods_train_together_and_only_the_chief_writes(diabetes: ModelNamespace):
    ns = diabetes.name
    (job,) = kubectl_json("get", "jobs", "-n", ns, "-l",
                          f"modelops.io/model-deployment={MODEL},app.kubernetes.io/component=training")["items"]
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    assert job["status"].get("succeeded") == 2, job["status"]
    pods = kubectl_json("get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job['metadata']['name']}")
    messages = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]:
                p["status"]["containerStatuses"][0]["state"]["terminated"].get("message", "")
                for p in pods["items"] if p["status"].get("phase") == "Succeeded"}
    assert set(messages) == {"0", "1"}, messages
    assert "the chief writes the artifacts" in messages["1"], messages["1"]

    model_dir = diabetes.version_dir(MODEL, "v1").parent
    versions = sorted(p.name for p in model_dir.iterdir())
    # No worker staging or backup directories left beside it; `feedback` is the serving replicas' directory.
    assert versions == ["feedback", "v1"], versions
    served = artifact_manifest.verify(model_dir / "v1")
    assert served.extra["training"]["workers"] == 2 and served.extra["training"]["replicas"] == 2, served.extra


def test_the_autoscaler_scales_serving_up_under_load_and_back_down(diabetes: ModelNamespace):
    ns = diabetes.name
    wait_for(lambda: kubectl_json("get", "hpa", MODEL, "-n", ns).get("status", {}).get("currentMetrics"),
             timeout=180, interval=2, describe="the HPA to read CPU from metrics-server")
    row = [0.0] * len(artifact_manifest.read(diabetes.version_dir(MODEL, "v1")).feature_names)
    start_pod(ns, "load-hpa", image_refs()["SERVING_IMAGE"], script_command(
        "load_client.py", "--host", f"{MODEL}.{ns}.svc.cluster.local", "--model", MODEL, "--row", json.dumps(row),
        "--max-requests", "200000", "--max-seconds", "240", "--concurrency", "6"), cpu="100m")
    try:
        wait_for(lambda: serving_deployment(ns)["status"].get("readyReplicas", 0) > MIN_REPLICAS,
                 timeout=240, interval=2, describe="the HPA to add a ready serving replica under load")
    finally:
        kubectl("-n", ns, "delete", "pod", "load-hpa", "--grace-period=1", "--wait=false", check=False)
    peak = serving_deployment(ns)["status"]["readyReplicas"]
    wait_for(lambda: serving_deployment(ns)["spec"]["replicas"] == MIN_REPLICAS, timeout=300, interval=3,
             describe=f"the HPA to scale back to {MIN_REPLICAS} after the load")
    assert peak > MIN_REPLICAS
