"""Pods that never run, and pods that fail for good, as the real controllers and scheduler decide.

The scheduler (no node matches, a claim that does not exist), the quota admission plugin (FailedCreate)
and the Job controller (podFailurePolicy) are the real ones; kwok only plays the kubelet.
"""
import json

from tests.integration.operator_fixtures import (
    apply, events, finish_job, load_example, objects, report, wait_md, wait_phase,
)
from tests.integration.test_operator import drive_to_ready
from tests.support.kube import job_pod_names, kubectl, kubectl_json, wait_for


def condition(status, type_):
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def wait_stuck(namespace, name, reason, timeout=60):
    status = wait_md(namespace, name, lambda s: condition(s, "Trained").get("reason") == reason,
                     f"md/{name}'s Trained condition to say {reason}", timeout)
    warning = wait_for(lambda: [e for e in events(namespace, name) if e["reason"] == reason], 30,
                       f"a {reason} event")[0]
    assert warning["type"] == "Warning" and "not running" in warning["message"]
    assert status["phase"] == "Training" and "not running" in status["message"]
    return status


def test_a_permanent_exit_code_fails_the_job_at_once_instead_of_retrying_it(operator, namespace):
    md = load_example("digits-classifier")
    md["spec"]["training"]["backoffLimit"] = 2
    apply(namespace, md)
    finish_job(namespace, "digits-train-v1-a1", exit_code=3,
               message=report("train", "v1", {}, succeeded=False, reason="BadData", message="data: no rows"))
    status = wait_phase(namespace, "digits", "Failed")
    assert "data: no rows" in status["message"]
    job = kubectl_json("get", "job/digits-train-v1-a1", "-n", namespace)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy", failed
    assert len(job_pod_names(namespace, "digits-train-v1-a1")) == 1, "a permanent failure must not be retried"


def test_a_training_pod_no_node_can_take_says_so(operator, namespace):
    md = load_example("digits-classifier")
    md["spec"]["training"]["nodeSelector"] = {"modelops.io/pool": "does-not-exist"}
    apply(namespace, md)
    status = wait_stuck(namespace, "digits", "Unschedulable")
    assert "cannot be scheduled" in status["message"] and "node" in status["message"]


def test_a_data_claim_that_does_not_exist_says_so(operator, namespace):
    md = load_example("digits-classifier")
    md["spec"]["data"].update(uri="pvc://no-such-claim/digits.csv", target="digit")
    apply(namespace, md)
    status = wait_stuck(namespace, "digits", "Unschedulable")
    assert 'persistentvolumeclaim "no-such-claim" not found' in status["message"]


def test_a_quota_refusal_is_reported_and_every_pod_we_add_fits_a_quota(operator, namespace):
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
             "spec": {"hard": {"requests.cpu": "20", "requests.memory": "40Gi", "limits.cpu": "20",
                               "limits.memory": "40Gi"}}}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(quota))
    md = load_example("digits-classifier")          # training: no limits.cpu, which this quota requires
    md["spec"]["storage"]["deleteOnModelDeletion"] = True
    apply(namespace, md)
    status = wait_stuck(namespace, "digits", "FailedCreate")
    assert "failed quota" in status["message"] and "limits.cpu" in status["message"]

    # With the user's own containers in bounds, the init container and the clean-up Job must fit too.
    whole = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
    md["spec"]["training"]["resources"] = md["spec"]["serving"]["resources"] = whole
    apply(namespace, md)
    # Resources change no model: the refused Job is made again with them, still v1 (issue 10, finding 6).
    status = drive_to_ready(namespace, "digits")
    assert status["latestVersion"] == "v1"
    assert status["ready"] == "2/2"
    assert condition(status, "Trained")["reason"] == "TrainingSucceeded"
    kubectl("delete", "md/digits", "-n", namespace, "--wait=false")
    cleanup = wait_for(lambda: [j for j in objects(namespace, "jobs") if "-cleanup-" in j["metadata"]["name"]],
                       30, "the clean-up Job")[0]["metadata"]["name"]
    wait_for(lambda: job_pod_names(namespace, cleanup), 30, "a pod of the clean-up Job under the quota")
    refused = [e["message"] for e in objects(namespace, "events") if e.get("reason") == "FailedCreate"
               and e["involvedObject"]["kind"] != "ModelDeployment" and e["involvedObject"]["name"] != "digits-train-v1-a1"]
    assert refused == [], refused


def test_a_serving_replica_the_quota_refuses_is_reported_while_rolling_out(operator, namespace):
    """The ReplicaSet's FailedCreate reaches the resource: pods are not watched, the Deployment says it."""
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "one-pod"},
             "spec": {"hard": {"pods": "1"}}}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(quota))
    apply(namespace, load_example("digits-classifier"))          # 2 serving replicas: the second is refused
    finish_job(namespace, "digits-train-v1-a1", message=report("train", "v1", {"accuracy": 0.95}))
    finish_job(namespace, "digits-compress-v1", message=report("compress", "v1", {"accuracy": 0.95}))
    status = wait_md(namespace, "digits", lambda s: condition(s, "Deployed").get("reason") == "FailedCreate",
                     "md/digits's Deployed condition to say FailedCreate", 90)
    assert status["phase"] == "Deploying" and "exceeded quota" in status["message"], status["message"]
    warning = wait_for(lambda: [e for e in events(namespace, "digits") if e["reason"] == "FailedCreate"], 30,
                       "a FailedCreate event")[0]
    assert warning["type"] == "Warning" and "Deployment digits" in warning["message"]
