"""Who the pods run as: the operator's default, a resource's own choice, and the restricted profile either way."""
from tests.integration.operator_fixtures import OperatorProcess, apply, load_example, objects
from tests.integration.test_operator import drive_to_ready
from tests.support.kube import kubectl, kubectl_json, wait_for


def pod_security(namespace, component):
    pods = wait_for(lambda: [p for p in objects(namespace, "pods")
                             if p["metadata"]["labels"].get("app.kubernetes.io/component") == component],
                    60, f"a {component} pod")
    return pods[0]["spec"]["securityContext"]


def test_a_resource_chooses_who_its_pods_run_as_within_the_restricted_profile(operator, namespace):
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    md = load_example("digits-classifier")
    md["spec"]["podSecurityContext"] = {"runAsUser": 1000, "runAsGroup": 0, "fsGroup": 2000,
                                        "fsGroupChangePolicy": "Always"}
    apply(namespace, md)
    wanted = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, "runAsUser": 1000,
              "runAsGroup": 0, "fsGroup": 2000, "fsGroupChangePolicy": "Always"}
    assert pod_security(namespace, "training") == wanted
    drive_to_ready(namespace, "digits")
    assert pod_security(namespace, "serving") == wanted
    refused = [e["message"] for e in objects(namespace, "events") if e.get("reason") == "FailedCreate"]
    assert refused == [], refused


def test_the_operators_default_can_leave_the_ids_to_the_platform(crd, namespace, storage, tmp_path):
    """OpenShift assigns UIDs itself: `{}` sets none, and the pods are still admitted as restricted."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    op = OperatorProcess(namespace, tmp_path, {"MODELOPS_POD_SECURITY_CONTEXT": "{}"}).start()
    try:
        apply(namespace, load_example("linear-regression"))
        assert pod_security(namespace, "training") == {"runAsNonRoot": True,
                                                       "seccompProfile": {"type": "RuntimeDefault"}}
    finally:
        op.stop()
    job = kubectl_json("get", "jobs", "-n", namespace)["items"][0]
    assert "FailJob" in [rule["action"] for rule in job["spec"]["podFailurePolicy"]["rules"]]
