"""The digits example from `kubectl apply` to a served model, every stage in a real container on the real
node: the operator (installed by Helm, running as a pod), the training and compression Jobs running
TensorFlow, and the serving Deployment loading the model through its init container behind a Service,
all in a namespace that enforces Pod Security "restricted" (test_node.py shows it refuses other pods).

The tests of this module run in order on one ModelDeployment, as a user would drive it: apply, predict,
change the spec under load, lose a replica under load, roll back by pin, delete.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from modelops_contracts import manifest as artifact_manifest
from modelops_training import data as training_data
from modelops_training import sources
from tests.e2e.pipeline_fixtures import (
    POD_UID, READY_TIMEOUT_S, ModelNamespace, apply, example, image_refs,
    pod_result, record_timing, run_pod, script_command, start_pod, wait_ready,
)
from tests.support.kube import kubectl, kubectl_json, wait_for
from tests.support.litert import tflite_output

# The first test also waits for the session's node, image import, operator install and the first training.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

MODEL = "digits"
# The node has 2 CPUs: the training pod asks for half of one, so a v2 Job fits beside the serving pods,
# the operator, CoreDNS, metrics-server and the load client.
DIGITS_ON_TWO_CPUS = {"training": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                                   "limits": {"memory": "3Gi"}}}}
LOAD_BOUNDS = {"max_requests": 60000, "concurrency": 4, "pause_ms": 5}


def held_out_row() -> tuple[list[float], int]:
    raw, label = sources.read_bytes("builtin:digits")
    table = training_data.parse_csv(raw, label, target=None, features=None)
    return [float(v) for v in table.features[-1]], int(table.target[-1])


def service_host(ns: str) -> str:
    return f"{MODEL}.{ns}.svc.cluster.local"


def probe(ns: str, pod: str) -> dict:
    row, truth = held_out_row()
    log = run_pod(ns, pod, serving_image(), script_command(
        "probe_client.py", "--host", service_host(ns), "--model", MODEL, "--row", json.dumps(row),
        "--truth", json.dumps(truth)), timeout=180)
    return json.loads(log.strip().splitlines()[-1])


def serving_image() -> str:
    return image_refs()["SERVING_IMAGE"]


def start_load(ns: str, pod: str, max_seconds: float, until_version: str = "") -> None:
    row, _ = held_out_row()
    args = ["--host", service_host(ns), "--model", MODEL, "--row", json.dumps(row),
            "--max-requests", str(LOAD_BOUNDS["max_requests"]), "--max-seconds", str(max_seconds),
            "--concurrency", str(LOAD_BOUNDS["concurrency"]), "--pause-ms", str(LOAD_BOUNDS["pause_ms"])]
    if until_version:
        args += ["--until-version", until_version, "--settle-seconds", "15"]
    start_pod(ns, pod, serving_image(), script_command("load_client.py", *args))


def load_result(ns: str, pod: str, timeout: float) -> dict:
    return json.loads(pod_result(ns, pod, timeout).strip().splitlines()[-1])


def serving_pods(ns: str) -> list[dict]:
    return kubectl_json("get", "pods", "-n", ns, "-l", f"modelops.io/model-deployment={MODEL},"
                        "app.kubernetes.io/component=serving")["items"]


def md_status(ns: str) -> dict:
    return kubectl_json("get", "md", MODEL, "-n", ns).get("status", {})


@pytest.fixture(scope="module")
def digits(model_namespace: ModelNamespace) -> ModelNamespace:
    apply(model_namespace.name, example("digits-classifier.yaml", DIGITS_ON_TWO_CPUS))
    record_timing("digits apply->Ready (s)", wait_ready(model_namespace.name, MODEL, READY_TIMEOUT_S))
    return model_namespace


def test_every_stage_ran_in_a_real_container(digits: ModelNamespace):
    ns = digits.name
    jobs = kubectl_json("get", "jobs", "-n", ns, "-l", f"modelops.io/model-deployment={MODEL}")["items"]
    by_component = {j["metadata"]["labels"]["app.kubernetes.io/component"]: j for j in jobs}
    assert {"training", "compression"} <= set(by_component), sorted(by_component)
    for component, job in by_component.items():
        assert job["status"].get("succeeded", 0) >= 1, (component, job["status"])
    training_log = kubectl("-n", ns, "logs", f"job/{by_component['training']['metadata']['name']}").stdout
    assert "held-out accuracy=" in training_log, training_log[-2000:]
    pods = serving_pods(ns)
    assert len(pods) == 2
    for pod in pods:
        (fetch,) = pod["status"]["initContainerStatuses"]
        assert fetch["state"]["terminated"]["exitCode"] == 0, fetch
        assert all(c["ready"] for c in pod["status"]["containerStatuses"]), pod["status"]
    status = md_status(ns)
    assert status["modelVersion"] == "v1" and status["ready"] == "2/2", status


def test_the_stage_pods_reach_only_their_models_directory_made_as_the_pods_user(digits: ModelNamespace):
    """User code mounted the whole claim read-write. Now each stage mounts its model's directory by subPath,
    made first by the prepare-storage init container as the pods' user: the kubelet would make it root-owned
    on this hostPath volume (which ignores fsGroup), and training could not write it."""
    ns = digits.name
    uid = kubectl_json("get", "md", MODEL, "-n", ns)["metadata"]["uid"]
    own = f"{ns}/{MODEL}/{uid}"
    job = kubectl_json("get", "job", f"{MODEL}-train-v1-a1", "-n", ns)["spec"]["template"]["spec"]
    (train,) = job["containers"]
    assert [(m["mountPath"], m.get("subPath")) for m in train["volumeMounts"] if m["name"] == "pvc-0"] == [
        (f"/mnt/pvc/models/{own}", own)]
    model_dir = digits.storage_dir / own
    assert (model_dir.stat().st_uid, model_dir.stat().st_gid) == (POD_UID, POD_UID)
    assert (digits.version_dir(MODEL, "v1") / "manifest.json").is_file()
    assert digits.version_dir(MODEL, "v1").parent == model_dir


def test_prediction_through_the_service_equals_the_local_tflite_model(digits: ModelNamespace):
    answers = probe(digits.name, "probe-v1")
    row, truth = held_out_row()
    version_dir = digits.version_dir(MODEL, "v1")
    served = artifact_manifest.read(version_dir)
    local = tflite_output(version_dir / served.servables["tflite"], row).tolist()

    assert answers["predict"]["status"] == 200, answers["predict"]
    assert np.allclose(answers["predict"]["body"]["predictions"][0], local, atol=1e-6)
    assert answers["v2"]["status"] == 200 and answers["v2"]["body"]["model_version"] == "v1", answers["v2"]
    assert np.allclose(answers["v2"]["body"]["outputs"][0]["data"], local, atol=1e-6)
    binary = answers["v2_binary"]
    assert binary["status"] == 200 and binary["output_bytes"] == 4 * len(local), binary
    assert np.allclose(binary["output"], local, atol=1e-6)
    assert answers["metadata"]["body"]["inputs"][0]["shape"] == [-1, len(row)], answers["metadata"]
    assert answers["feedback"]["status"] == 200 and answers["feedback"]["body"]["joined"] == 1, answers["feedback"]
    assert int(np.argmax(local)) == truth


def test_a_spec_change_rolls_out_v2_under_load_without_a_failed_request(digits: ModelNamespace):
    ns = digits.name
    start_load(ns, "load-rollout", max_seconds=600, until_version="v2")
    wait_for(lambda: kubectl_json("get", "pod", "load-rollout", "-n", ns)["status"].get("phase") == "Running",
             timeout=60, interval=1, describe="the load client to start")
    changed = example("digits-classifier.yaml", DIGITS_ON_TWO_CPUS,
                      {"training": {"hyperparameters": {"epochs": 14}}})
    started = time.monotonic()
    apply(ns, changed)
    result = load_result(ns, "load-rollout", timeout=660)
    record_timing("v2 spec change -> clients all on v2 (s)", time.monotonic() - started)

    assert result["reachedVersion"], result
    assert result["failed"] == 0, result
    assert set(result["versions"]) == {"v1", "v2"}, result
    wait_ready(ns, MODEL, 120)
    assert md_status(ns)["modelVersion"] == "v2"


def test_losing_a_serving_replica_under_load_fails_no_request(digits: ModelNamespace):
    ns = digits.name
    start_load(ns, "load-pod-delete", max_seconds=45)
    wait_for(lambda: kubectl_json("get", "pod", "load-pod-delete", "-n", ns)["status"].get("phase") == "Running",
             timeout=60, interval=1, describe="the load client to start")
    time.sleep(5)  # let the clients reach both replicas before one goes
    victim = serving_pods(ns)[0]["metadata"]["name"]
    kubectl("-n", ns, "delete", "pod", victim, "--wait=false")
    result = load_result(ns, "load-pod-delete", timeout=120)

    assert result["failed"] == 0, result
    assert result["ok"] > 100, result
    wait_for(lambda: md_status(ns).get("ready") == "2/2", timeout=180, interval=1,
             describe="two ready replicas again")


def test_pinning_v1_rolls_back_without_retraining(digits: ModelNamespace):
    ns = digits.name
    jobs_before = {j["metadata"]["name"] for j in
                   kubectl_json("get", "jobs", "-n", ns, "-l", f"modelops.io/model-deployment={MODEL}")["items"]}
    kubectl("-n", ns, "patch", "md", MODEL, "--type=merge", "-p", '{"spec":{"serving":{"modelVersion":"v1"}}}')
    wait_for(lambda: md_status(ns).get("modelVersion") == "v1", timeout=180, interval=1, describe="v1 served")
    wait_ready(ns, MODEL, 180)
    assert probe(ns, "probe-pinned")["v2"]["body"]["model_version"] == "v1"
    jobs_after = {j["metadata"]["name"] for j in
                  kubectl_json("get", "jobs", "-n", ns, "-l", f"modelops.io/model-deployment={MODEL}")["items"]}
    assert jobs_after == jobs_before


def test_deleting_the_model_deployment_removes_every_child(digits: ModelNamespace):
    """With deleteOnModelDeletion the clean-up Job runs for real: the operator's image, the name directory
    mounted by subPath, and this resource's versions gone from the host while the directory stays the pods'."""
    ns = digits.name
    kubectl("-n", ns, "patch", "md", MODEL, "--type=merge", "-p",
            json.dumps({"spec": {"storage": {"deleteOnModelDeletion": True}}}))
    wait_for(lambda: "modelops.io/artifacts" in (kubectl_json("get", "md", MODEL, "-n", ns)["metadata"]
                                                 .get("finalizers") or []), timeout=60,
             describe="the clean-up finalizer")
    model_dir = digits.version_dir(MODEL, "v1").parent
    assert model_dir.is_dir()
    kubectl("-n", ns, "delete", "md", MODEL, "--wait=true", "--timeout=180s")
    assert not model_dir.exists(), sorted(p.name for p in model_dir.iterdir())
    name_dir = model_dir.parent
    assert (name_dir.stat().st_uid, name_dir.stat().st_gid) == (POD_UID, POD_UID)
    # The clean-up Job has no owner on purpose (it outlives the resource) and goes by its TTL.
    selector = f"modelops.io/model-deployment={MODEL},app.kubernetes.io/component!=cleanup"

    def children() -> list[str]:
        out = kubectl("-n", ns, "get", "jobs,deployments,replicasets,services,configmaps,pdb,hpa,pods",
                      "-l", selector, "-o", "name").stdout
        return out.split()
    wait_for(lambda: not children(), timeout=180, interval=1, describe="every child to be garbage-collected")
