"""The operator's spec reader agrees with the CRD, the single source of the schema."""
import copy
import re
from pathlib import Path

import pytest
import yaml

from modelops_operator import spec as specmod
from operator_samples import ROOT, example

CRD = yaml.safe_load((ROOT / "crds" / "modeldeployments.modelops.io.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def schema_at(path: str) -> dict:
    node = SCHEMA
    for key in path.split("."):
        assert "properties" in node and key in node["properties"], f"spec.{path} is not in the CRD schema"
        node = node["properties"][key]
    return node


@pytest.mark.parametrize("attr", sorted(specmod.FIELDS))
def test_every_field_the_operator_reads_exists_in_the_crd_with_the_same_default(attr):
    path, default = specmod.FIELDS[attr]
    node = schema_at(path)
    assert node.get("default") == default or (default is None and "default" not in node), \
        f"spec.{path}: CRD default {node.get('default')!r} but the operator assumes {default!r}"


def test_every_cross_field_rule_of_the_crd_has_its_twin_in_the_reader():
    messages = []
    def walk(node):
        for rule in node.get("x-kubernetes-validations") or []:
            if "oldSelf" not in rule["rule"]:   # transition rules need the stored object: the API server's alone
                messages.append(rule["message"])
        for child in (node.get("properties") or {}).values():
            walk(child)
    walk(SCHEMA)
    reader = Path(specmod.__file__).read_text() + Path(specmod.__file__).with_name("rollout.py").read_text()
    source = reader.replace('"\n', "").replace(' "', "").replace('"', "")
    flat = " ".join(source.split())
    for message in messages:
        assert " ".join(message.split()) in flat, f"CRD rule without a twin in spec.py: {message}"


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_parses(path):
    parsed = specmod.parse(yaml.safe_load(path.read_text())["spec"])
    assert parsed.storage_claim == "models"


def test_serving_changes_keep_the_version_hash_and_training_changes_do_not():
    spec = example("digits-classifier")["spec"]
    base = specmod.parse(spec).version_hash
    spec["serving"]["replicas"] = 7
    assert specmod.parse(spec).version_hash == base
    spec["training"]["hyperparameters"]["epochs"] = 99
    assert specmod.parse(spec).version_hash != base


@pytest.mark.parametrize("change, field", [
    (lambda s: s["evaluation"].update(metric="mse", threshold={"max": 1}), "spec.evaluation.metric"),
    (lambda s: s["evaluation"].update(threshold={"min": 0.1, "max": 0.2}), "spec.evaluation.threshold"),
    (lambda s: s["training"].update(strategy={"type": "OneDevice", "workers": 2}), "spec.training.strategy.workers"),
    (lambda s: s["serving"].update(autoscaling={"minReplicas": 5, "maxReplicas": 2}),
     "spec.serving.autoscaling.minReplicas"),
    (lambda s: s.pop("storage"), "spec.storage.uri"),
    (lambda s: s["serving"].update(autoscaling={"maxReplicas": 4}, resources={"limits": {"cpu": "1"}}),
     "spec.serving.resources.requests.cpu"),
    (lambda s: s["training"].update(precision="mixed_float16"), "spec.training.precision"),
    (lambda s: s["data"].update(featureSpec={"": {"dtype": "float32"}}), "spec.data.featureSpec"),
    (lambda s: s["serving"].update(envFrom=[{"secretRef": {"name": "aws"}}, {}]), "spec.serving.envFrom[1]"),
    (lambda s: s["training"].update(env=[{"name": "TOKEN", "valueFrom": {}}]), "spec.training.env[0].valueFrom"),
])
def test_invalid_specs_are_refused_naming_the_field(change, field):
    spec = example("digits-classifier")["spec"]
    change(spec)
    with pytest.raises(specmod.SpecError, match=re.escape(field)):
        specmod.parse(spec)


@pytest.mark.parametrize("edit", [
    lambda s: s["training"].update(resources={"requests": {"cpu": "4"}}, tolerations=[{"operator": "Exists"}],
                                   nodeSelector={"pool": "big"}, podAnnotations={"a": "b"}, backoffLimit=5,
                                   priorityClassName="high", activeDeadlineSeconds=600),
    lambda s: s["data"].update(shuffleSeed=42),                           # a default, spelled out (a CRD upgrade)
    lambda s: s["training"]["hyperparameters"].update(learningRate=1e-3),
    lambda s: s["compression"]["pruning"].update(targetSparsity=0.9),     # pruning is off: no effect
    lambda s: s["storage"].update(deleteOnModelDeletion=True),
], ids=["placement", "explicit-default", "same-number", "unused-sparsity", "storage-policy"])
def test_edits_that_change_no_model_keep_the_version_hash(edit):
    spec = example("digits-classifier")["spec"]
    spec["compression"]["pruning"] = {"enabled": False}
    base = specmod.parse(spec).version_hash
    edit(spec)
    assert specmod.parse(spec).version_hash == base


def test_a_run_recorded_under_the_legacy_hash_is_not_a_new_version():
    from modelops_operator import builders as b
    from modelops_operator.pipeline import current_run
    spec = specmod.parse(example("digits-classifier")["spec"])
    status = {"pipeline": {"version": "v3", "stage": "done", "attempt": 1, "specHash": spec.legacy_version_hash}}
    run, is_new = current_run(status, spec, "now", b.Owner("ml", "digits", "u"), b.Images())
    assert not is_new and run["version"] == "v3" and run["specHash"] == spec.version_hash


def test_fields_defaulted_since_the_legacy_hash_was_recorded_start_no_version():
    """The API server fills a new field's default into every stored object; the old operator never saw it."""
    from modelops_operator import builders as b
    from modelops_operator.pipeline import current_run
    as_stored_before = example("digits-classifier")["spec"]
    recorded = specmod.legacy_version_hash(as_stored_before)
    as_read_now = copy.deepcopy(as_stored_before)
    as_read_now.setdefault("training", {}).update(precision="float32", jitCompile=False)
    status = {"pipeline": {"version": "v3", "stage": "done", "attempt": 1, "specHash": recorded}}
    run, is_new = current_run(status, specmod.parse(as_read_now), "now", b.Owner("ml", "digits", "u"), b.Images())
    assert not is_new and run["version"] == "v3"
    as_read_now["training"]["jitCompile"] = True
    assert current_run(status, specmod.parse(as_read_now), "now", b.Owner("ml", "digits", "u"), b.Images())[1]
