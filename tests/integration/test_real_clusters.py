"""What a real cluster does differently from the happy path: storage access modes, identity, names, queues."""
import copy
import json
import time

import pytest

from modelops_operator import builders as b
from modelops_operator import names
from modelops_operator.spec import parse
from tests.integration.operator_fixtures import (
    apply, events, finish_job, load_example, md_status, report, wait_md, wait_phase,
)
from tests.support.kube import create_bound_claim, job_pod_names, kubectl, kubectl_json, wait_for


def storage_condition(status):
    return next((c for c in status.get("conditions") or [] if c["type"] == "StorageShared"), None)


def test_a_read_write_once_claim_is_reported_not_shared(operator, namespace):
    create_bound_claim(namespace, "rwo", f"rwo-{namespace}", access_mode="ReadWriteOnce")
    md = load_example("diabetes-multiworker")
    md["spec"]["storage"]["uri"] = "pvc://rwo"
    apply(namespace, md)
    status = wait_md(namespace, "diabetes", lambda s: storage_condition(s), "the StorageShared condition")
    condition = storage_condition(status)
    assert condition["status"] == "False" and condition["reason"] == "ClaimNotShared"
    assert "claim rwo is ReadWriteOnce" in condition["message"] and "2 training workers" in condition["message"]
    assert "Multi-Attach" in condition["message"]
    wait_phase(namespace, "diabetes", "Training")      # a warning, not a stop: one node would do
    warnings = [e for e in events(namespace, "diabetes") if e["reason"] == "ClaimNotShared"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"

    # The shared claim clears it (storage.uri is immutable: a new resource of the same name).
    kubectl("delete", "md/diabetes", "-n", namespace, "--wait=true", "--timeout=60s")
    md["spec"]["storage"]["uri"] = "pvc://models"
    apply(namespace, md)
    wait_md(namespace, "diabetes", lambda s: (storage_condition(s) or {}).get("status") == "True",
            "StorageShared to turn True on the ReadWriteMany claim")
    kubectl("delete", "pv", f"rwo-{namespace}", "--wait=false", check=False)


def test_a_missing_claim_is_named(operator, namespace):
    md = copy.deepcopy(load_example("linear-regression"))
    md["spec"]["storage"]["uri"] = "pvc://nowhere/models"
    apply(namespace, md)
    status = wait_md(namespace, md["metadata"]["name"], lambda s: storage_condition(s), "the StorageShared condition")
    condition = storage_condition(status)
    assert condition["reason"] == "ClaimNotFound"
    assert condition["message"].startswith(f"storage.uri: claim nowhere does not exist in namespace {namespace}")
    assert md_status(namespace, md["metadata"]["name"])["phase"] == "Training"


def test_pods_run_as_the_given_service_account_with_env_from_secrets(operator, namespace):
    kubectl("create", "serviceaccount", "trainer", "-n", namespace)
    kubectl("create", "secret", "generic", "s3-creds", "-n", namespace, "--from-literal=AWS_ACCESS_KEY_ID=id")
    md = load_example("linear-regression")
    md["spec"]["training"] = {"serviceAccountName": "trainer", "envFrom": [{"secretRef": {"name": "s3-creds"}}],
                              "env": [{"name": "AWS_REGION", "value": "eu-west-1"}]}
    md["spec"]["imagePullSecrets"] = [{"name": "registry"}]
    apply(namespace, md)
    pods = wait_for(lambda: job_pod_names(namespace, "linear-train-v1-a1"), 30, "the training pod")
    pod = kubectl_json("get", f"pod/{pods[0]}", "-n", namespace)["spec"]
    assert pod["serviceAccountName"] == "trainer" and pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in pod["containers"][0]["env"]



@pytest.mark.parametrize("name, accepted", [("m" * 37, True), ("m" * 38, False), ("7digits", False)])
def test_a_name_whose_derived_names_would_not_fit_is_refused(crd, namespace, name, accepted):
    md = load_example("diabetes-multiworker")
    md["metadata"]["name"] = name
    result = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(md), check=False)
    assert (result.returncode == 0) is accepted, result.stderr
    if name.startswith("7"):
        assert "metadata.name must be a DNS-1035 label" in result.stderr
    elif not accepted:
        assert "metadata.name must be at most 37 characters" in result.stderr


@pytest.mark.parametrize("length, accepted", [(names.max_name_length(), True), (names.max_name_length() + 1, False)])
def test_the_longest_derived_objects_fit_exactly_at_the_limit(crd, namespace, length, accepted):
    """The objects the builders make for the last version and attempt, with 64 workers, as the API server
    judges them (server-side dry run): all accepted at the limit, refused one character past it."""
    raw = load_example("diabetes-multiworker")["spec"]
    raw["training"]["strategy"]["workers"] = 64
    spec = parse(raw)
    owner = b.Owner(namespace=namespace, name="m" * length, uid="0" * 36)
    version, attempt = names.LONGEST_VERSION, names.LAST_ATTEMPT
    job = b.build_training_job(spec, owner, b.Images(), version, attempt)
    last_worker = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "last-worker", "namespace": namespace},
                   "spec": {**job["spec"]["template"]["spec"], "hostname": f"{job['metadata']['name']}-63"}}
    built = [job, b.build_workers_service(owner, job["metadata"]["name"], version), last_worker,
             b.build_compression_job(spec, owner, b.Images(), version), b.build_cleanup_job(spec, owner, b.Images()),
             *b.build_serving_objects(spec, owner, b.Images(), version, "tflite")[0]]
    refused = []
    for obj in built:
        obj["metadata"].pop("ownerReferences", None)      # the owner does not exist in a dry run
        result = kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
        if result.returncode:
            refused.append(f"{obj['kind']} {obj['metadata']['name']}: {result.stderr.strip()}")
    assert (refused == []) is accepted, refused
    if not accepted:
        assert any("must be no more than 63 characters" in r for r in refused), refused


def admit(namespace, job):
    """What Kueue does once the queue's quota fits every pod of the Job: unsuspend it."""
    wait_for(lambda: kubectl("get", f"job/{job}", "-n", namespace, check=False).returncode == 0, 30, f"Job {job}")
    kubectl("patch", f"job/{job}", "-n", namespace, "--type=merge", "-p", '{"spec": {"suspend": false}}')


def test_a_queued_model_waits_suspended_until_kueue_admits_it(operator, namespace):
    md = load_example("diabetes-multiworker")
    md["spec"]["training"]["queueName"] = "gpu-team"
    apply(namespace, md)
    status = wait_md(namespace, "diabetes", lambda s: "suspended until admitted" in (s.get("message") or ""),
                     "the queued message")
    assert status["phase"] == "Training" and "queue gpu-team" in status["message"]
    job = kubectl_json("get", "job/diabetes-train-v1-a1", "-n", namespace)
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team" and job["spec"]["suspend"]
    time.sleep(3)   # a suspended Job gets no pods, however long it waits
    assert job_pod_names(namespace, "diabetes-train-v1-a1") == []
    admit(namespace, "diabetes-train-v1-a1")
    finish_job(namespace, "diabetes-train-v1-a1", pods=2, message=report("train", "v1", {"r2": 0.45}))
    wait_phase(namespace, "diabetes", "Compressing")
    admit(namespace, "diabetes-compress-v1")
    finish_job(namespace, "diabetes-compress-v1", message=report("compress", "v1", {"r2": 0.45}))
    wait_phase(namespace, "diabetes", "Ready", timeout=90)
