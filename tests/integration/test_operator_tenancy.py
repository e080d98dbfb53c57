"""What a user with `create` on ModelDeployments reaches through the operator's pods: only its own model's
directory of the storage claim, and only the images the cluster's policy allows."""
from __future__ import annotations

import json

from modelops_operator.conditions import get_condition
from tests.integration.operator_fixtures import (
    OperatorProcess, apply, events, finish_job, load_example, objects, wait_phase,
)
from tests.integration.test_chart import CHART, helm
from tests.integration.test_operator import drive_to_ready
from tests.support.kube import kubectl, kubectl_json, wait_for


def claim_mounts(pod_spec: dict, claim: str = "models") -> dict[str, list[tuple]]:
    """Per container: (mountPath, subPath, readOnly) of each mount of the claim."""
    volumes = {v["name"] for v in pod_spec["volumes"] if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim}
    return {c["name"]: [(m["mountPath"], m.get("subPath"), bool(m.get("readOnly"))) for m in c.get("volumeMounts", [])
                        if m["name"] in volumes]
            for c in pod_spec.get("initContainers", []) + pod_spec["containers"]}


def test_every_pod_mounts_only_its_own_models_directory_of_the_claim(operator, namespace):
    """Training ran user code with the whole claim mounted read-write: it could rewrite other models' versions."""
    md = load_example("digits-classifier")
    md["spec"]["storage"]["uri"] = "pvc://models/team-a"
    md["spec"]["storage"]["deleteOnModelDeletion"] = True
    apply(namespace, md)
    wait_phase(namespace, "digits", "Training")
    uid = kubectl_json("get", "md/digits", "-n", namespace)["metadata"]["uid"]
    own = f"team-a/{namespace}/digits/{uid}"
    # The pods as the Job controller made them and the API server stored them.
    pod = wait_for(lambda: [p for p in objects(namespace, "pods")
                            if p["metadata"]["labels"].get("app.kubernetes.io/component") == "training"], 30,
                   "the training pod")[0]["spec"]
    assert claim_mounts(pod) == {"prepare-storage": [("/mnt/pvc/models", None, False)],
                                 "train": [(f"/mnt/pvc/models/{own}", own, False)]}
    assert [c["image"] for c in pod["initContainers"]] == ["ghcr.io/modelops/modelops-serving:0.1.0"]

    status = drive_to_ready(namespace, "digits")
    # status.artifactPath is where the version lives under storage.uri: inside the mounted directory.
    assert f"team-a/{status['history'][0]['artifactPath']}".startswith(own + "/")
    compress = kubectl_json("get", "job/digits-compress-v1", "-n", namespace)["spec"]["template"]["spec"]
    assert claim_mounts(compress)["compress"] == [(f"/mnt/pvc/models/{own}", own, False)]
    serving = kubectl_json("get", "deployment/digits", "-n", namespace)["spec"]["template"]["spec"]
    assert claim_mounts(serving) == {"fetch-model": [(f"/mnt/pvc/models/{own}", own, True)], "server": []}

    kubectl("delete", "md/digits", "-n", namespace, "--wait=false")
    cleanup = wait_for(lambda: [j for j in objects(namespace, "jobs") if "-cleanup-" in j["metadata"]["name"]],
                       30, "the clean-up Job")[0]
    name_dir = f"team-a/{namespace}/digits"
    assert claim_mounts(cleanup["spec"]["template"]["spec"]) == {
        "prepare-storage": [("/mnt/pvc/models", None, False)],
        "cleanup": [(f"/mnt/pvc/models/{name_dir}", name_dir, False)]}
    finish_job(namespace, cleanup["metadata"]["name"])
    wait_for(lambda: not [m for m in objects(namespace, "md")], 30, "the resource to go")


ALLOWED = "registry.example.com/ml/"


def with_images(training: str | None = None, serving: str | None = None) -> dict:
    md = load_example("digits-classifier")
    if training:
        md["spec"]["training"]["image"] = training
    if serving:
        md["spec"]["serving"]["image"] = serving
    return md


def test_the_operator_refuses_an_image_outside_the_allow_list_with_a_condition_and_an_event(
        crd, namespace, storage, tmp_path):
    """Where the admission policy is off, the operator itself runs no pod with an image the cluster does not allow."""
    op = OperatorProcess(namespace, tmp_path, {"MODELOPS_ALLOWED_IMAGES": ALLOWED}).start()
    try:
        apply(namespace, with_images(training="docker.io/someone/train:1"))
        status = wait_phase(namespace, "digits", "Failed")
        expected = ("spec.training.image: image docker.io/someone/train:1 is not allowed "
                    f"(allowed image prefixes: {ALLOWED})")
        assert status["message"] == expected
        ready = get_condition(status["conditions"], "Ready")
        assert (ready["status"], ready["reason"], ready["message"]) == ("False", "ImageNotAllowed", expected)
        assert [e["message"] for e in events(namespace, "digits") if e["reason"] == "ImageNotAllowed"] == [expected]
        assert objects(namespace, "jobs") == []
        # Fixed: the pipeline starts, with the allowed image.
        apply(namespace, with_images(training=f"{ALLOWED}train:1"))
        wait_phase(namespace, "digits", "Training")
        job = kubectl_json("get", "job/digits-train-v1-a1", "-n", namespace)
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == f"{ALLOWED}train:1"
        apply(namespace, with_images(training=f"{ALLOWED}train:1", serving="docker.io/someone/serve:1"))
        status = wait_phase(namespace, "digits", "Failed")
        assert status["message"].startswith("spec.serving.image: image docker.io/someone/serve:1 is not allowed")
    finally:
        op.stop()
        print(op.logs())


def apply_dry_run(namespace: str, md: dict):
    return kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(md), check=False)


def test_the_charts_admission_policy_refuses_an_image_outside_the_allow_list_at_apply(crd, namespace):
    rendered = helm("template", namespace, str(CHART), "--namespace", namespace,
                    "--set", f"imagePolicy.allowedImages={{{ALLOWED}}}", "--set", f"watchNamespaces={{{namespace}}}",
                    "--show-only", "templates/imagepolicy.yaml")
    kubectl("apply", "-f", "-", input=rendered)
    try:
        # The API server loads a new policy within a few seconds: until then the resource is admitted.
        refused = wait_for(lambda: (r := apply_dry_run(namespace, with_images(training="docker.io/someone/t:1")))
                           .returncode != 0 and r, 30, "the admission policy to refuse the resource")
        assert ("spec.training.image: image docker.io/someone/t:1 is not allowed "
                f"(allowed image prefixes: {ALLOWED})") in refused.stderr, refused.stderr
        refused = apply_dry_run(namespace, with_images(serving="docker.io/someone/s:1"))
        assert "spec.serving.image: image docker.io/someone/s:1 is not allowed" in refused.stderr, refused.stderr
        for allowed in (with_images(), with_images(training=f"{ALLOWED}t:1", serving=f"{ALLOWED}s:1")):
            result = apply_dry_run(namespace, allowed)
            assert result.returncode == 0, result.stderr
    finally:
        kubectl("delete", "-f", "-", "--wait=false", input=rendered, check=False)
