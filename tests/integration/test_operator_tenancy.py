"""What a user with `create` on ModelDeployments reaches through the operator's pods: only its own model's
directory of the storage claim, and only the images the cluster's policy allows."""
from __future__ import annotations

from tests.integration.operator_fixtures import apply, finish_job, load_example, objects, wait_phase
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
        "cleanup": [(f"/mnt/pvc/models/{name_dir}", name_dir, False)]}
    finish_job(namespace, cleanup["metadata"]["name"])
    wait_for(lambda: not [m for m in objects(namespace, "md")], 30, "the resource to go")
