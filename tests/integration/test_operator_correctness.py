"""Issue 10: ways a ModelDeployment got stuck, judged a stranger's Job, or lost versions, reproduced on
the real control plane where the API server's answer decides the outcome."""
import json

from modelops_contracts.report import StageReport, encode

from tests.integration.operator_fixtures import (
    apply, events, finish_job, load_example, md_status, objects, report, wait_md, wait_phase,
)
from tests.integration.test_operator import drive_to_ready
from tests.support.kube import api_client, kubectl, kubectl_json, wait_for


def auc_digits() -> dict:
    md = load_example("digits-classifier")
    md["spec"]["evaluation"] = {"metric": "auc", "threshold": {"min": 0.9}, "maxRetrains": 1}
    return md


def test_a_nan_metric_fails_the_version_instead_of_wedging_the_resource(operator, namespace):
    """A bare NaN in a report used to reach status, which the API server refuses to store, forever."""
    apply(namespace, auc_digits())
    wait_phase(namespace, "digits", "Training")
    text = encode(StageReport(stage="train", succeeded=True, version="v1", metric="auc",
                              metrics={"accuracy": 0.9, "auc": 0.123456}))
    finish_job(namespace, "digits-train-v1-a1", message=text.replace("0.123456", "NaN"))
    status = wait_phase(namespace, "digits", "Failed")
    assert "metrics.auc: nan is not a finite number" in status["message"]
    trained = next(c for c in status["conditions"] if c["type"] == "Trained")
    assert (trained["status"], trained["reason"]) == ("False", "InvalidReport")
    assert "ReconcileFailed" not in [e["reason"] for e in events(namespace, "digits")]
    assert "NaN" not in str(md_status(namespace, "digits"))


def test_a_recreated_resource_never_judges_the_jobs_its_predecessor_left(operator, namespace):
    """Delete with --cascade=orphan and apply again: the old, finished training Job holds the name the
    new resource's v1 Job needs. It used to be read as the new v1's result (straight to Compressing)."""
    apply(namespace, load_example("digits-classifier"))
    finish_job(namespace, "digits-train-v1-a1", message=report("train", "v1", {"accuracy": 0.95}))
    wait_phase(namespace, "digits", "Compressing")
    kubectl("delete", "md/digits", "-n", namespace, "--cascade=orphan", "--wait=true", "--timeout=30s")
    old = kubectl_json("get", "job/digits-train-v1-a1", "-n", namespace)["metadata"]["uid"]
    apply(namespace, load_example("digits-classifier"))
    uid = kubectl_json("get", "md/digits", "-n", namespace)["metadata"]["uid"]

    def new_job():
        found = kubectl("get", "job/digits-train-v1-a1", "-n", namespace, "-o", "json", check=False)
        job = json.loads(found.stdout) if found.returncode == 0 else None
        return job and job["metadata"]["uid"] != old and job
    job = wait_for(new_job, 60, "the stale Job to be replaced by the new resource's own")
    assert [o["uid"] for o in job["metadata"]["ownerReferences"]] == [uid]
    assert job["metadata"]["labels"]["modelops.io/owner-uid"] == uid
    status = md_status(namespace, "digits")
    assert status["phase"] == "Training" and status["history"][0]["outcome"] == "Training"
    assert "Compressing" not in [e["reason"] for e in events(namespace, "digits")]
    # Its own run goes on as usual (the old pods, matched by name, must not stand in for the new ones).
    wait_for(lambda: not [p for p in objects(namespace, "pods") if p["metadata"]["labels"].get(
        "batch.kubernetes.io/controller-uid") == old], 60, "the stale Job's pods to go")
    drive_to_ready(namespace, "digits")


def test_a_users_objects_with_our_names_are_never_taken_over_or_deleted(operator, namespace):
    """A Service and a PodDisruptionBudget the user made, named as ours: forced apply used to take the
    Service over, and a spec change deleted the PDB by name."""
    user = {"app": "theirs"}
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "digits", "labels": user},
         "spec": {"selector": user, "ports": [{"port": 1234}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "digits", "labels": user},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": user}}}]}))
    md = load_example("digits-classifier")
    md["spec"]["serving"]["replicas"] = 1                   # no PDB wanted: the user's is "unwanted"
    apply(namespace, md)
    finish_job(namespace, "digits-train-v1-a1", message=report("train", "v1", {"accuracy": 0.95}))
    wait_phase(namespace, "digits", "Compressing")
    finish_job(namespace, "digits-compress-v1", message=report("compress", "v1", {"accuracy": 0.95}))
    status = wait_md(namespace, "digits", lambda s: any(
        c["type"] == "Deployed" and c["reason"] == "NameConflict" for c in s.get("conditions", [])),
        "a NameConflict condition")
    deployed = next(c for c in status["conditions"] if c["type"] == "Deployed")
    assert "Service digits exists and is not owned by this ModelDeployment" in deployed["message"]
    md["spec"]["serving"]["batching"]["maxBatchSize"] = 64  # a serving change: unwanted objects are deleted
    apply(namespace, md)
    wait_for(lambda: md_status(namespace, "digits").get("observedGeneration") == 2, 30, "generation 2 observed")
    svc = kubectl_json("get", "service/digits", "-n", namespace)
    assert svc["spec"]["selector"] == user and not svc["metadata"].get("ownerReferences")
    assert [p["port"] for p in svc["spec"]["ports"]] == [1234]
    pdb = kubectl_json("get", "pdb/digits", "-n", namespace)
    assert pdb["spec"]["selector"]["matchLabels"] == user
    conflicts = [e for e in events(namespace, "digits") if e["reason"] == "NameConflict"]
    assert len(conflicts) == 1, "a Warning on the change, not on every pass"


def test_turning_on_autoscaling_keeps_the_replicas_until_the_hpa_decides(operator, namespace):
    """Applying without spec.replicas used to reset the Deployment to 1 before the HPA took over."""
    md = load_example("digits-classifier")
    md["spec"]["serving"]["replicas"] = 3
    apply(namespace, md)
    drive_to_ready(namespace, "digits")
    wait_for(lambda: md_status(namespace, "digits").get("readyReplicas") == 3, 60, "3 ready replicas")
    del md["spec"]["serving"]["replicas"]
    md["spec"]["serving"]["autoscaling"] = {"minReplicas": 2, "maxReplicas": 6}
    apply(namespace, md)
    wait_for(lambda: (kubectl_json("get", "hpa/digits", "-n", namespace).get("status") or {}).get("currentReplicas"),
             90, "the HPA to observe the Deployment", ignoring=(Exception,))
    deploy = kubectl_json("get", "deployment/digits", "-n", namespace, "--show-managed-fields")
    assert deploy["spec"]["replicas"] == 3
    managers = {m["manager"] for m in deploy["metadata"]["managedFields"] if "f:replicas" in json.dumps(m)}
    assert "modelops-operator" not in managers
    scaled = [e["message"] for e in objects(namespace, "events") if e.get("reason") == "ScalingReplicaSet"]
    assert not [m for m in scaled if m.endswith("to 1") or " to 1 " in m], scaled


def test_a_stale_guarded_finalizer_patch_is_a_conflict_not_an_error(crd, namespace):
    """The API server answers a failed JSON-patch `test` with 422; the reconciler retries 409s quietly."""
    from kubernetes.client.exceptions import ApiException
    from modelops_operator.cleanup import finalizer_patch
    from modelops_operator.kube import Kube
    apply(namespace, load_example("digits-classifier"))
    meta = kubectl_json("get", "md/digits", "-n", namespace)["metadata"]
    kubectl("annotate", "md/digits", "-n", namespace, "moved=on")          # the resource moves on
    with api_client() as api:
        try:
            Kube(api).json_patch("ModelDeployment", namespace, "digits",
                                 finalizer_patch(meta, "modelops.io/artifacts", True))
        except ApiException as e:
            assert e.status == 409, (e.status, e.reason)
        else:
            raise AssertionError("a patch guarded by a stale resourceVersion went through")
    assert not kubectl_json("get", "md/digits", "-n", namespace)["metadata"].get("finalizers")


def pause_status_writes(namespace: str) -> str:
    """A ValidatingAdmissionPolicy refusing every status write in the namespace, as a lost race would."""
    name = f"pause-status-{namespace}"
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": name},
         "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [
             {"apiGroups": ["modelops.io"], "apiVersions": ["*"], "operations": ["UPDATE"],
              "resources": ["modeldeployments/status"]}]},
             "validations": [{"expression": "false", "message": "status writes are paused"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name},
         "spec": {"policyName": name, "validationActions": ["Deny"], "matchResources": {
             "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}}]}))
    probe = ["patch", "md/digits", "-n", namespace, "--subresource=status", "--type=merge",
             "-p", json.dumps({"status": {"message": "probe"}})]
    wait_for(lambda: kubectl(*probe, check=False).returncode != 0, 30, "the policy to refuse status writes")
    return name


def test_no_job_is_made_for_a_version_status_does_not_record(operator, namespace):
    """Children used to be made before status: a pass whose status write failed left a v2 Job for spec A,
    and the next pass (spec B, still v2) adopted it, rewriting its config under the running Job."""
    md = load_example("digits-classifier")
    apply(namespace, md)
    wait_phase(namespace, "digits", "Training")
    policy = pause_status_writes(namespace)
    try:
        md["spec"]["training"]["hyperparameters"]["epochs"] = 20            # spec A: would be v2
        apply(namespace, md)
        wait_for(lambda: [e for e in events(namespace, "digits") if e["reason"] == "ReconcileFailed"
                          and "status writes are paused" in e["message"]], 60, "the refused status write")
        assert "digits-train-v2-a1" not in [j["metadata"]["name"] for j in objects(namespace, "jobs")]
        md["spec"]["training"]["hyperparameters"]["epochs"] = 30            # spec B, before A was recorded
        apply(namespace, md)
    finally:
        kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, check=False)
    job = wait_for(lambda: kubectl_json("get", "job/digits-train-v2-a1", "-n", namespace), 90, "the v2 Job",
                   ignoring=(Exception,))
    config = json.loads(kubectl_json("get", "configmap/digits-train-v2-a1-config", "-n", namespace)["data"]["job.json"])
    assert config["training"]["epochs"] == 30
    status = md_status(namespace, "digits")
    assert status["latestVersion"] == "v2" and job["metadata"]["labels"]["modelops.io/spec-hash"] == \
        status["pipeline"]["specHash"]
