"""The operator against the real control plane: kwok nodes, real Job/ReplicaSet/GC/HPA controllers."""
import json

import pytest

from tests.integration.operator_fixtures import (
    apply, events, finish_job, load_example, md_status, objects, report, wait_md, wait_phase,
)
from tests.support.kube import job_pod_names, kubectl, kubectl_json, wait_for


def owned_by(obj, name):
    return [o["name"] for o in obj["metadata"].get("ownerReferences") or [] if o["kind"] == "ModelDeployment"] == [name]


def drive_to_ready(ns, name, version="v1", accuracy=0.95, metric="accuracy", pods=1, attempt=1):
    finish_job(ns, f"{name}-train-{version}-a{attempt}", pods=pods,
               message=report("train", version, {metric: accuracy}, attempt=attempt))
    wait_phase(ns, name, "Compressing")
    finish_job(ns, f"{name}-compress-{version}",
               message=report("compress", version, {metric: accuracy - 0.001},
                              compression={"ratio": 3.9, "float32Bytes": 670000, "compressedBytes": 171000}))
    return wait_phase(ns, name, "Ready")


def test_happy_path_from_apply_to_ready(operator, namespace):
    apply(namespace, load_example("digits-classifier"))
    status = wait_phase(namespace, "digits", "Training")
    assert status["latestVersion"] == "v1" and status["attempts"] == 1

    job = kubectl_json("get", "job/digits-train-v1-a1", "-n", namespace)
    assert owned_by(job, "digits")
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["command"] == ["modelops-train"]
    config = kubectl_json("get", "configmap/digits-train-v1-a1-config", "-n", namespace)
    assert owned_by(config, "digits") and json.loads(config["data"]["job.json"])["model"]["version"] == "v1"

    status = drive_to_ready(namespace, "digits")
    assert status["modelVersion"] == "v1" and status["metricSummary"] == "accuracy=0.95"
    assert status["readyReplicas"] == 2 and status["ready"] == "2/2"
    assert status["metrics"]["compressionRatio"] == 3.9
    assert {c["type"]: c["status"] for c in status["conditions"]} == dict.fromkeys(
        ["Trained", "Evaluated", "Compressed", "Deployed", "Ready", "StorageShared"], "True")
    assert status["observedGeneration"] == 1
    # No finalizer unless artifacts are to be deleted: deletion never waits for the operator.
    assert kubectl_json("get", "md/digits", "-n", namespace)["metadata"].get("finalizers") in (None, [])

    deploy = kubectl_json("get", "deployment/digits", "-n", namespace)
    assert owned_by(deploy, "digits")
    assert deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert owned_by(kubectl_json("get", "service/digits", "-n", namespace), "digits")
    assert owned_by(kubectl_json("get", "pdb/digits", "-n", namespace), "digits")
    assert objects(namespace, "hpa") == []

    kubectl("wait", "--for=condition=Ready", "md/digits", "-n", namespace, "--timeout=5s")
    row = kubectl("get", "md", "-n", namespace).stdout.splitlines()[1].split()
    assert row[:5] == ["digits", "Ready", "v1", "accuracy=0.95", "2/2"]
    assert row[5] == f"http://digits.{namespace}.svc.cluster.local/v1/models/digits:predict"
    reasons = [e["reason"] for e in events(namespace, "digits")]
    for reason in ("VersionStarted", "Evaluated", "Compressed", "Deployed", "PhaseReady"):
        assert reason in reasons


def test_multi_worker_training_runs_an_indexed_job_and_autoscaled_serving(operator, namespace):
    apply(namespace, load_example("diabetes-multiworker"))
    wait_phase(namespace, "diabetes", "Training")
    job = kubectl_json("get", "job/diabetes-train-v1-a1", "-n", namespace)
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    svc = kubectl_json("get", "service/diabetes-train-v1-a1-workers", "-n", namespace)
    assert svc["spec"]["clusterIP"] == "None"
    pods = wait_for(lambda: len(p := job_pod_names(namespace, "diabetes-train-v1-a1")) == 2 and p, 30, "two workers")
    indexes = set()
    for pod in pods:
        spec = kubectl_json("get", f"pod/{pod}", "-n", namespace)
        env = {e["name"]: e.get("value") for e in spec["spec"]["containers"][0]["env"]}
        assert env["MODELOPS_WORKER_HOSTS"].count(":2222") == 2
        indexes.add(spec["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])
    assert indexes == {"0", "1"}
    drive_to_ready(namespace, "diabetes", metric="r2", accuracy=0.45, pods=2)
    hpa = kubectl_json("get", "hpa/diabetes", "-n", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert "replicas" in kubectl_json("get", "deployment/diabetes", "-n", namespace)["spec"]  # set by the HPA


def test_gpu_training_lands_on_the_gpu_pool(operator, namespace):
    apply(namespace, load_example("gpu-mirrored"))
    wait_phase(namespace, "cancer-gpu", "Training")
    pod = wait_for(lambda: (p := job_pod_names(namespace, "cancer-gpu-train-v1-a1")) and p[0], 30, "training pod")
    spec = wait_for(lambda: (s := kubectl_json("get", f"pod/{pod}", "-n", namespace)["spec"]).get("nodeName") and s,
                    30, "the GPU pod to be scheduled")
    node = kubectl_json("get", f"node/{spec['nodeName']}")
    assert node["status"]["allocatable"].get("nvidia.com/gpu") == "8"
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_a_missed_threshold_retrains_then_passes(operator, namespace):
    apply(namespace, load_example("digits-classifier"))
    finish_job(namespace, "digits-train-v1-a1", message=report("train", "v1", {"accuracy": 0.5}))
    status = wait_phase(namespace, "digits", "Retraining")
    assert status["attempts"] == 2
    evaluated = next(c for c in status["conditions"] if c["type"] == "Evaluated")
    assert evaluated["status"] == "False" and evaluated["reason"] == "ThresholdNotMet"
    status = drive_to_ready(namespace, "digits", attempt=2)
    assert status["history"][0]["attempts"] == 2
    configs = [json.loads(c["data"]["job.json"])["training"] for c in objects(namespace, "configmaps")
               if c["metadata"]["name"].startswith("digits-train-")]
    assert len({c["seed"] for c in configs}) == 2, "each attempt trains with its own seed"


def test_exhausted_retrains_fail_with_the_reason(operator, namespace):
    md = load_example("digits-classifier")
    md["spec"]["evaluation"]["maxRetrains"] = 0
    apply(namespace, md)
    finish_job(namespace, "digits-train-v1-a1", message=report("train", "v1", {"accuracy": 0.5}))
    status = wait_phase(namespace, "digits", "Failed")
    assert "accuracy=0.5 does not meet the threshold >= 0.9" in status["message"]
    assert "RetrainsExhausted" in [e["reason"] for e in events(namespace, "digits")]
    assert objects(namespace, "deployments") == []


def test_a_failed_job_fails_with_the_pods_reason_and_an_event(operator, namespace):
    md = load_example("digits-classifier")
    md["spec"]["training"]["backoffLimit"] = 0
    apply(namespace, md)
    finish_job(namespace, "digits-train-v1-a1", exit_code=3,
               message=report("train", "v1", {}, succeeded=False, reason="BadData",
                              message="data.target: column 'label' not in digits.csv"))
    status = wait_phase(namespace, "digits", "Failed")
    assert "column 'label' not in digits.csv" in status["message"]
    trained = next(c for c in status["conditions"] if c["type"] == "Trained")
    assert trained["reason"] == "BadData"
    warning = [e for e in events(namespace, "digits") if e["reason"] == "BadData"]
    assert warning and warning[0]["type"] == "Warning"
    assert "BadData" in kubectl("describe", "md/digits", "-n", namespace).stdout


@pytest.mark.parametrize("phase", ["Training", "Compressing", "Deploying"])
def test_an_operator_killed_in_any_phase_resumes_without_duplicates(operator, namespace, phase):
    apply(namespace, load_example("digits-classifier"))
    wait_phase(namespace, "digits", "Training")
    if phase in ("Compressing", "Deploying"):
        finish_job(namespace, "digits-train-v1-a1", message=report("train", "v1", {"accuracy": 0.95}))
        wait_phase(namespace, "digits", "Compressing")
    if phase == "Deploying":
        # Status says Compressing before the Job exists (the version is recorded first), so wait for its pod.
        wait_for(lambda: job_pod_names(namespace, "digits-compress-v1"), 60, "the compression Job's pod")
    operator.kill()
    if phase == "Deploying":
        # The Job finishes while no operator runs; the restarted one must pick the result up.
        finish_job(namespace, "digits-compress-v1", message=report("compress", "v1", {"accuracy": 0.95}))
    operator.start()
    if phase == "Training":
        finish_job(namespace, "digits-train-v1-a1", message=report("train", "v1", {"accuracy": 0.95}))
    if phase in ("Training", "Compressing"):
        wait_phase(namespace, "digits", "Compressing")
        finish_job(namespace, "digits-compress-v1", message=report("compress", "v1", {"accuracy": 0.95}))
    status = wait_phase(namespace, "digits", "Ready")
    assert [h["version"] for h in status["history"]] == ["v1"]
    assert status["history"][0]["outcome"] == "Deployed" and status["history"][0]["attempts"] == 1
    jobs = sorted(j["metadata"]["name"] for j in objects(namespace, "jobs"))
    assert jobs == ["digits-compress-v1", "digits-train-v1-a1"]
    assert [d["metadata"]["name"] for d in objects(namespace, "deployments")] == ["digits"]


def test_updates_new_version_serving_change_scale_rollback_and_delete(operator, namespace):
    md = load_example("digits-classifier")
    apply(namespace, md)
    drive_to_ready(namespace, "digits")

    md["spec"]["training"]["hyperparameters"]["epochs"] = 20          # a training change: v2
    apply(namespace, md)
    status = wait_phase(namespace, "digits", "Training")
    assert status["latestVersion"] == "v2" and status["modelVersion"] == "v1"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", "v1 keeps serving while v2 trains"
    version_label = "modelops.io/model-version"
    deploy = kubectl_json("get", "deployment/digits", "-n", namespace)
    assert deploy["spec"]["template"]["metadata"]["labels"][version_label] == "v1"
    status = drive_to_ready(namespace, "digits", version="v2", accuracy=0.97)
    assert status["modelVersion"] == "v2"
    assert [(h["version"], h["outcome"]) for h in status["history"]] == [("v2", "Deployed"), ("v1", "Superseded")]

    jobs_before = len(objects(namespace, "jobs"))
    md["spec"]["serving"]["batching"]["maxBatchSize"] = 64              # serving-only: no retraining
    apply(namespace, md)
    wait_for(lambda: any(e["name"] == "MODELOPS_MAX_BATCH_SIZE" and e["value"] == "64" for e in kubectl_json(
        "get", "deployment/digits", "-n", namespace)["spec"]["template"]["spec"]["containers"][0]["env"]),
        30, "the batching change on the Deployment")
    assert len(objects(namespace, "jobs")) == jobs_before
    assert md_status(namespace, "digits")["latestVersion"] == "v2"

    kubectl("scale", "md/digits", "-n", namespace, "--replicas=3")
    wait_for(lambda: kubectl_json("get", "deployment/digits", "-n", namespace)["spec"]["replicas"] == 3,
             30, "the Deployment to scale to 3")
    wait_for(lambda: md_status(namespace, "digits").get("readyReplicas") == 3, 30, "3 ready replicas in status")

    md["spec"]["serving"]["replicas"] = 3
    md["spec"]["serving"]["modelVersion"] = "v1"                         # rollback without retraining
    apply(namespace, md)
    wait_md(namespace, "digits", lambda s: s.get("modelVersion") == "v1" and s.get("phase") == "Ready",
            "the rollback to v1")
    deploy = kubectl_json("get", "deployment/digits", "-n", namespace)
    assert deploy["spec"]["template"]["metadata"]["labels"][version_label] == "v1"
    assert len(objects(namespace, "jobs")) == jobs_before

    kubectl("delete", "md/digits", "-n", namespace, "--wait=true", "--timeout=30s")
    for kind in ("jobs", "deployments", "services", "configmaps", "pdb"):
        wait_for(lambda: not [o for o in objects(namespace, kind) if o["metadata"]["name"].startswith("digits")],
                 60, f"{kind} of digits to be garbage-collected")


def test_every_generated_pod_is_admitted_under_restricted_pod_security(operator, namespace):
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    apply(namespace, load_example("diabetes-multiworker"))
    drive_to_ready(namespace, "diabetes", metric="r2", accuracy=0.45, pods=2)
    pods = objects(namespace, "pods")
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert components == {"training", "compression", "serving"}
    warnings = [e for e in objects(namespace, "events") if e.get("reason") == "FailedCreate"]
    assert warnings == [], [e["message"] for e in warnings]
