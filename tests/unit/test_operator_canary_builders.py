"""The canary Deployment: the stable one's pod template for the new version, beside it behind the same Service."""
from modelops_operator import builders as b
from modelops_operator import constants as c
from modelops_operator.spec import parse
from operator_samples import example
from test_operator_builders import IMAGES, OWNER, assert_owned, assert_restricted


def canary_spec(**canary):
    spec = example("digits-classifier")["spec"]
    spec["serving"]["rollout"] = {"strategy": "Canary", "canary": canary}
    return parse(spec)


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_canary_runs_the_stable_pod_template_for_the_new_version():
    spec = canary_spec(replicas=2)
    stable = b.build_serving_deployment(spec, OWNER, IMAGES, "v1", "tflite", OWNER.uid)
    canary = b.build_canary_deployment(spec, OWNER, IMAGES, "v2", "tflite", OWNER.uid)
    assert canary["metadata"]["name"] == "digits-canary" == b.canary_name(OWNER)
    assert_owned(canary)
    assert canary["metadata"]["labels"][c.LABEL_VERSION] == "v2"
    assert canary["metadata"]["labels"][c.LABEL_OWNER_UID] == OWNER.uid
    assert canary["spec"]["replicas"] == 2
    pod = canary["spec"]["template"]["spec"]
    assert_restricted(pod)
    # Only the version differs from what the stable Deployment runs for v2 (and the track label).
    as_stable_v2 = b.build_serving_deployment(spec, OWNER, IMAGES, "v2", "tflite", OWNER.uid)["spec"]["template"]
    assert pod == as_stable_v2["spec"]
    assert canary["spec"]["template"]["metadata"]["labels"] == {**as_stable_v2["metadata"]["labels"],
                                                                c.LABEL_TRACK: c.TRACK_CANARY}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MODELOPS_MODEL_DIR"] == "/models/v2" and env["MODELOPS_MODEL_NAME"] == "digits"
    assert "/v2" in pod["initContainers"][0]["args"][1]
    assert stable["spec"]["template"]["metadata"]["labels"][c.LABEL_VERSION] == "v1"


def test_the_service_selects_both_and_each_deployment_owns_only_its_own_pods():
    spec = canary_spec()
    stable = b.build_serving_deployment(spec, OWNER, IMAGES, "v1", "tflite")
    canary = b.build_canary_deployment(spec, OWNER, IMAGES, "v2", "tflite")
    service = b.build_serving_service(OWNER)
    stable_pod = stable["spec"]["template"]["metadata"]["labels"]
    canary_pod = canary["spec"]["template"]["metadata"]["labels"]
    assert selects(service["spec"]["selector"], stable_pod) and selects(service["spec"]["selector"], canary_pod)
    assert selects(canary["spec"]["selector"]["matchLabels"], canary_pod)
    assert not selects(canary["spec"]["selector"]["matchLabels"], stable_pod)
    # The stable Deployment's selector is unchanged (it is immutable), and its pods carry no track label:
    # a canary changes nothing in the stable Deployment, so it starts no rollout of it.
    assert stable["spec"]["selector"] == {"matchLabels": b.serving_selector(OWNER)}
    assert c.LABEL_TRACK not in stable_pod


def test_the_canary_has_a_fixed_replica_count_even_when_the_stable_one_autoscales():
    spec = example("digits-classifier")["spec"]
    spec["serving"].update(autoscaling={"maxReplicas": 4}, resources={"requests": {"cpu": "1"}},
                           rollout={"strategy": "Canary", "canary": {"replicas": 3}})
    spec = parse(spec)
    assert "replicas" not in b.build_serving_deployment(spec, OWNER, IMAGES, "v1", "tflite")["spec"]
    assert b.build_canary_deployment(spec, OWNER, IMAGES, "v2", "tfliteFloat32")["spec"]["replicas"] == 3
