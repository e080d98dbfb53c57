"""The test control plane is a real one: real API server admission and RBAC, real controllers, kwok nodes."""

from __future__ import annotations

import json
import subprocess

import kubernetes
import pytest

from tests.support.kube import (
    EXIT_CODE_ANNOTATION, api_client, finish_pod, job_pod_names, kubectl, kubectl_json, wait_for,
    write_serviceaccount_kubeconfig,
)

TIMEOUT_S = 60
IMAGE = "registry.invalid/modelops/test:1"  # kwok runs no containers: the image is never pulled


def apply(namespace: str, *objects: dict) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def build_pod_spec(**extra) -> dict:
    return {"containers": [{"name": "main", "image": IMAGE}], **extra}


def build_deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": build_pod_spec()},
        },
    }


def build_job(name: str, **spec) -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": build_pod_spec(restartPolicy="Never")}, **spec},
    }


def job_condition(namespace: str, name: str) -> str | None:
    """The type of the Job's terminal condition (Complete or Failed) once it has one."""
    conditions = kubectl_json("-n", namespace, "get", "job", name).get("status", {}).get("conditions", [])
    return next((c["type"] for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"), None)


def running_job_pods(namespace: str, job: str, count: int) -> list[str]:
    def running() -> list[str]:
        names = job_pod_names(namespace, job)
        phases = [kubectl_json("-n", namespace, "get", "pod", n)["status"].get("phase") for n in names]
        return names if len(names) == count and set(phases) == {"Running"} else []

    return wait_for(running, TIMEOUT_S, f"{count} Running pods of Job {job}")


def terminated_state(namespace: str, pod: str) -> dict:
    return kubectl_json("-n", namespace, "get", "pod", pod)["status"]["containerStatuses"][0]["state"]["terminated"]


def test_a_deployment_gets_a_replicaset_and_ready_pods_on_kwok_cpu_nodes(namespace):
    apply(namespace, build_deployment("web", replicas=3))

    wait_for(lambda: kubectl_json("-n", namespace, "get", "deployment", "web").get("status", {}).get("readyReplicas") == 3,
             TIMEOUT_S, "3 ready replicas of Deployment web")
    replicasets = kubectl_json("-n", namespace, "get", "replicasets", "-l", "app=web")["items"]
    assert [rs["metadata"]["ownerReferences"][0]["name"] for rs in replicasets] == ["web"]
    pods = kubectl_json("-n", namespace, "get", "pods", "-l", "app=web")["items"]
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert all(p["spec"]["nodeName"].startswith("kwok-cpu-") for p in pods)


def test_a_job_pod_runs_until_told_then_succeeds_with_the_supplied_termination_message(namespace):
    apply(namespace, build_job("train"))
    [pod] = running_job_pods(namespace, "train", count=1)
    assert job_condition(namespace, "train") is None

    # Multi-line JSON with characters YAML and JSON escape differently survives the kwok stage template.
    report = json.dumps({"stage": "train", "metrics": {"accuracy": 0.93}, "note": "<a & b> \"é\"\tdone"}, indent=2)
    finish_pod(namespace, pod, exit_code=0, message=report)

    wait_for(lambda: job_condition(namespace, "train"), TIMEOUT_S, "Job train to finish")
    assert job_condition(namespace, "train") == "Complete"
    terminated = terminated_state(namespace, pod)
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (0, "Completed", report)


def test_a_job_pod_fails_with_the_chosen_exit_code_and_the_job_controller_sees_it(namespace):
    # The pod failure policy only fails the Job if the controller reads exit code 42 from the pod status.
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    apply(namespace, build_job("train", backoffLimit=6, podFailurePolicy=policy))
    [pod] = running_job_pods(namespace, "train", count=1)

    finish_pod(namespace, pod, exit_code=42, message="loss diverged", reason="TrainingDiverged")

    wait_for(lambda: job_condition(namespace, "train"), TIMEOUT_S, "Job train to finish")
    job = kubectl_json("-n", namespace, "get", "job", "train")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    terminated = terminated_state(namespace, pod)
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (42, "TrainingDiverged", "loss diverged")


def test_a_job_whose_pod_template_carries_the_exit_code_finishes_on_its_own(namespace):
    job = build_job("train")
    job["spec"]["template"]["metadata"] = {"annotations": {EXIT_CODE_ANNOTATION: "0"}}
    apply(namespace, job)

    wait_for(lambda: job_condition(namespace, "train"), TIMEOUT_S, "Job train to finish")
    assert job_condition(namespace, "train") == "Complete"


def test_an_indexed_job_completes_only_when_both_pods_have_finished(namespace):
    apply(namespace, build_job("workers", completionMode="Indexed", completions=2, parallelism=2))
    first, second = running_job_pods(namespace, "workers", count=2)

    finish_pod(namespace, first)
    wait_for(lambda: kubectl_json("-n", namespace, "get", "job", "workers").get("status", {}).get("succeeded") == 1,
             TIMEOUT_S, "one succeeded pod of Job workers")
    assert job_condition(namespace, "workers") is None

    finish_pod(namespace, second)
    wait_for(lambda: job_condition(namespace, "workers"), TIMEOUT_S, "Job workers to finish")
    job = kubectl_json("-n", namespace, "get", "job", "workers")
    assert (job_condition(namespace, "workers"), job["status"]["completedIndexes"]) == ("Complete", "0,1")


def test_a_deployment_rolls_out_a_new_template_and_the_old_pods_go_away(namespace):
    apply(namespace, build_deployment("web", replicas=2))
    wait_for(lambda: kubectl_json("-n", namespace, "get", "deployment", "web").get("status", {}).get("readyReplicas") == 2,
             TIMEOUT_S, "2 ready replicas of Deployment web")

    kubectl("-n", namespace, "set", "image", "deployment/web", f"main={IMAGE}-next")

    def rolled_out_images() -> set[str]:
        pods = kubectl_json("-n", namespace, "get", "pods", "-l", "app=web")["items"]
        status = kubectl_json("-n", namespace, "get", "deployment", "web")["status"]
        # The status counts a terminating pod as gone before kwok has removed it: wait for both.
        done = status.get("updatedReplicas") == status.get("readyReplicas") == status.get("replicas") == len(pods) == 2
        return done and {p["spec"]["containers"][0]["image"] for p in pods}

    assert wait_for(rolled_out_images, TIMEOUT_S, "the rollout of the new image") == {f"{IMAGE}-next"}


def test_deleting_a_namespace_removes_its_pods_and_then_the_namespace(control_plane):
    name = "doomed"
    kubectl("create", "namespace", name)
    wait_for(lambda: kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
             TIMEOUT_S, "the default ServiceAccount")
    apply(name, build_deployment("web", replicas=2))
    wait_for(lambda: len(kubectl_json("-n", name, "get", "pods")["items"]) == 2, TIMEOUT_S, "2 pods")

    kubectl("delete", "namespace", name, "--wait=false")

    wait_for(lambda: kubectl("get", "namespace", name, check=False).returncode != 0, TIMEOUT_S,
             f"namespace {name} to be gone")


def test_deleting_an_owner_garbage_collects_its_dependents(namespace):
    apply(namespace, build_deployment("web", replicas=2))
    wait_for(lambda: len(kubectl_json("-n", namespace, "get", "pods", "-l", "app=web")["items"]) == 2,
             TIMEOUT_S, "2 pods of Deployment web")

    kubectl("-n", namespace, "delete", "deployment", "web", "--cascade=background", "--wait=false")

    def dependents() -> list[str]:
        return [f"{o['kind']}/{o['metadata']['name']}"
                for o in kubectl_json("-n", namespace, "get", "replicasets,pods", "-l", "app=web")["items"]]

    wait_for(lambda: not dependents() or None, TIMEOUT_S, "the ReplicaSet and pods of web to be collected")
    assert dependents() == []


def test_restricted_pod_security_refuses_a_pod_without_hardening_and_admits_a_compliant_one(namespace):
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    # Admitted by the "baseline" profile; "restricted" also wants the hardening the compliant pod has.
    plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"}, "spec": build_pod_spec()}
    compliant = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "compliant"},
                 "spec": build_pod_spec(
                     securityContext={"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                     containers=[{"name": "main", "image": IMAGE, "securityContext": {
                         "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}])}

    with pytest.raises(subprocess.CalledProcessError) as refused:
        apply(namespace, plain)
    assert 'violates PodSecurity "restricted:latest"' in refused.value.stderr
    assert "runAsNonRoot" in refused.value.stderr
    apply(namespace, compliant)
    assert kubectl_json("-n", namespace, "get", "pod", "compliant")["metadata"]["name"] == "compliant"


def test_rbac_is_enforced_for_a_serviceaccount_until_a_role_grants_access(namespace, tmp_path):
    user = f"system:serviceaccount:{namespace}:default"
    token_kubeconfig = write_serviceaccount_kubeconfig(namespace, "default", tmp_path / "kubeconfig")

    def can_list_pods() -> dict[str, bool]:
        impersonated = kubectl("-n", namespace, "get", "pods", f"--as={user}", check=False).returncode == 0
        with_token = kubectl("-n", namespace, "get", "pods", f"--kubeconfig={token_kubeconfig}", check=False).returncode == 0
        with api_client(impersonate=user) as client:
            try:
                kubernetes.client.CoreV1Api(client).list_namespaced_pod(namespace)
                python_client = True
            except kubernetes.client.ApiException as error:
                assert error.status == 403
                python_client = False
        return {"impersonated": impersonated, "token": with_token, "python client": python_client}

    assert can_list_pods() == {"impersonated": False, "token": False, "python client": False}

    kubectl("-n", namespace, "create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    kubectl("-n", namespace, "create", "rolebinding", "pod-reader", "--role=pod-reader",
            f"--serviceaccount={namespace}:default")

    wait_for(lambda: all(can_list_pods().values()), TIMEOUT_S, "the RoleBinding to take effect")
    assert kubectl("-n", namespace, "get", "deployments", f"--as={user}", check=False).returncode != 0


def test_a_gpu_pod_lands_on_the_gpu_node_only_with_the_toleration(namespace):
    gpu_limits = {"resources": {"limits": {"nvidia.com/gpu": "2"}}}
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    tolerating = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tolerating"},
                  "spec": build_pod_spec(containers=[{"name": "main", "image": IMAGE, **gpu_limits}],
                                         tolerations=[toleration])}
    intolerant = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "intolerant"},
                  "spec": build_pod_spec(containers=[{"name": "main", "image": IMAGE, **gpu_limits}])}
    apply(namespace, tolerating, intolerant)

    wait_for(lambda: kubectl_json("-n", namespace, "get", "pod", "tolerating")["status"].get("phase") == "Running",
             TIMEOUT_S, "the tolerating GPU pod to run")
    assert kubectl_json("-n", namespace, "get", "pod", "tolerating")["spec"]["nodeName"] == "kwok-gpu-0"

    def unschedulable_reason() -> str | None:
        conditions = kubectl_json("-n", namespace, "get", "pod", "intolerant")["status"].get("conditions", [])
        return next((c.get("reason") for c in conditions if c["type"] == "PodScheduled" and c["status"] == "False"), None)

    assert wait_for(unschedulable_reason, TIMEOUT_S, "the scheduler to give up on the intolerant pod") == "Unschedulable"


def test_the_hpa_controller_takes_on_a_horizontal_pod_autoscaler(namespace):
    apply(namespace, build_deployment("web", replicas=1), {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    })

    def conditions() -> dict[str, str]:
        status = kubectl_json("-n", namespace, "get", "hpa", "web").get("status", {})
        return {c["type"]: c["status"] for c in status.get("conditions", [])}

    # No metrics API here, so the controller reports it cannot compute a scale: proof that it ran.
    seen = wait_for(lambda: conditions().get("ScalingActive") and conditions(), TIMEOUT_S, "the HPA controller's conditions")
    assert seen["AbleToScale"] == "True" and seen["ScalingActive"] == "False"
