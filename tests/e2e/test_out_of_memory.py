"""A training pod that runs out of memory on the real node: the kernel's OOM killer ends it (exit 137,
OOMKilled), the Job controller fails the Job at once by its podFailurePolicy instead of re-running the pod
`backoffLimit` times, the operator fails the version saying which limit to raise and retrains nothing, and
raising that limit retries the version.
"""
from __future__ import annotations

import pytest

from tests.e2e.pipeline_fixtures import ModelNamespace, apply, example
from tests.support.kube import kubectl_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

MODEL = "digits"
# TensorFlow alone needs a few hundred MiB: the trainer cannot even import it within this limit.
TOO_LITTLE = {"training": {"resources": {"requests": {"cpu": "250m", "memory": "48Mi"},
                                         "limits": {"memory": "48Mi"}}}}


def status(ns: str) -> dict:
    return kubectl_json("get", "md", MODEL, "-n", ns).get("status") or {}


def test_an_out_of_memory_training_fails_once_and_is_retried_when_its_memory_is_raised(
        model_namespace: ModelNamespace):
    ns = model_namespace.name
    apply(ns, example("digits-classifier.yaml", TOO_LITTLE))
    wait_for(lambda: status(ns).get("phase") == "Failed", timeout=300, interval=2, describe="md/digits Failed")
    failed = status(ns)
    assert failed["pipeline"]["reason"] == "OOMKilled", failed
    assert "spec.training.resources.limits.memory" in failed["message"], failed["message"]
    assert failed["attempts"] == 1 and failed["latestVersion"] == "v1", failed
    (job,) = kubectl_json("get", "jobs", "-n", ns, "-l", "app.kubernetes.io/component=training")["items"]
    reasons = [c.get("reason") for c in job["status"].get("conditions", []) if c["type"] == "Failed"]
    assert reasons == ["PodFailurePolicy"], job["status"]
    pods = kubectl_json("get", "pods", "-n", ns, "-l", f"job-name={job['metadata']['name']}")["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]     # not re-run backoffLimit times
    (terminated,) = [s["state"]["terminated"] for s in pods[0]["status"]["containerStatuses"]]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "OOMKilled"), terminated

    apply(ns, example("digits-classifier.yaml", {"training": {"resources": {
        "requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "3Gi"}}}}))
    wait_for(lambda: status(ns).get("latestVersion") == "v2" and status(ns).get("phase") != "Failed",
             timeout=120, interval=2, describe="v2 started after the memory limit was raised")
    wait_for(lambda: kubectl_json("get", "jobs", "-n", ns, "-l", "modelops.io/model-version=v2")["items"],
             timeout=60, interval=2, describe="v2's training Job")
