"""What a real cluster does differently from the happy path: storage access modes, identity, names, queues."""
import copy
import json

import pytest

from tests.integration.operator_fixtures import apply, events, load_example, md_status, wait_md, wait_phase
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

    # The shared claim clears it.
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


def test_at_the_limit_every_derived_object_is_created(operator, namespace):
    md = load_example("diabetes-multiworker")
    md["metadata"]["name"] = name = "m" * 37
    md["spec"]["training"]["hyperparameters"]["epochs"] = 7
    apply(namespace, md)
    wait_phase(namespace, name, "Training")
    # The Job controller makes both workers' pods, named and labelled after the Job.
    assert len(wait_for(lambda: len(p := job_pod_names(namespace, f"{name}-train-v1-a1")) == 2 and p, 30,
                        "two worker pods")) == 2
    kubectl("get", f"service/{name}-train-v1-a1-workers", "-n", namespace)
    assert not [e for e in events(namespace, name) if e["reason"] == "ReconcileFailed"]
