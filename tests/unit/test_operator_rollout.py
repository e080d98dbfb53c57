"""spec.serving.rollout: the reader's table agrees with the CRD, and bad values are refused naming the field."""
import pytest
import yaml

from modelops_operator import rollout as r
from modelops_operator.spec import SpecError, parse
from operator_samples import ROOT, example

CRD = yaml.safe_load((ROOT / "crds" / "modeldeployments.modelops.io.yaml").read_text())
ROLLOUT = (CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
           ["properties"]["serving"]["properties"]["rollout"])


def schema_at(path: str) -> dict:
    node = ROLLOUT
    for key in path.split("."):
        node = node["properties"][key]
    return node


@pytest.mark.parametrize("attr", sorted(r.FIELDS))
def test_every_rollout_field_has_the_crds_default_bounds_and_enum(attr):
    path, default, low, high, enum = r.FIELDS[attr]
    node = schema_at(path)
    assert node.get("default") == default or (default is None and "default" not in node)
    assert (node.get("minimum"), node.get("maximum"), tuple(node["enum"]) if "enum" in node else None) == (low, high, enum)
    assert (node["type"] == "integer") == (attr in r.INTEGER_FIELDS)
    assert getattr(r.Rollout(), attr) == default   # the dataclass's defaults are the table's


def with_rollout(rollout: dict) -> dict:
    spec = example("digits-classifier")["spec"]
    spec["serving"]["rollout"] = rollout
    return spec


def test_no_rollout_is_replace_and_a_canary_is_read_with_defaults_filled_in():
    assert parse(example("digits-classifier")["spec"]).rollout == r.Rollout(strategy="Replace")
    got = parse(with_rollout({"strategy": "Canary", "canary": {"replicas": 2, "maxMetricDrop": 0, "onTimeout": "Abort"}}))
    assert got.rollout.canary and got.rollout.replicas == 2 and got.rollout.on_timeout == "Abort"
    assert got.rollout.max_metric_drop == 0.0 and isinstance(got.rollout.max_metric_drop, float)
    assert got.rollout.min_pairs == 100 and got.rollout.max_p99_ms is None


def test_rollout_settings_make_no_new_version():
    base = parse(example("digits-classifier")["spec"]).version_hash
    assert parse(with_rollout({"strategy": "Canary", "canary": {"minPairs": 5}})).version_hash == base


@pytest.mark.parametrize("rollout, field", [
    ({"strategy": "BlueGreen"}, "spec.serving.rollout.strategy"),
    ({"canary": {"replicas": 0}}, "spec.serving.rollout.canary.replicas"),
    ({"canary": {"replicas": 1.5}}, "spec.serving.rollout.canary.replicas"),
    ({"canary": {"minPairs": True}}, "spec.serving.rollout.canary.minPairs"),
    ({"canary": {"maxErrorRate": 1.5}}, "spec.serving.rollout.canary.maxErrorRate"),
    ({"canary": {"maxLatencyP99Ratio": 0.5}}, "spec.serving.rollout.canary.maxLatencyP99Ratio"),
    ({"canary": {"maxLatencyP99Ms": "fast"}}, "spec.serving.rollout.canary.maxLatencyP99Ms"),
    ({"canary": {"timeoutSeconds": 10}}, "spec.serving.rollout.canary.timeoutSeconds"),
    ({"canary": {"onTimeout": "Wait"}}, "spec.serving.rollout.canary.onTimeout"),
    ({"canary": {"minDurationSeconds": 600, "timeoutSeconds": 600}}, "spec.serving.rollout.canary.minDurationSeconds"),
    ("Canary", "spec.serving.rollout"),
])
def test_bad_rollout_values_are_refused_naming_the_field(rollout, field):
    with pytest.raises(SpecError) as e:
        parse(with_rollout(rollout))
    assert str(e.value).split(": ")[0] == field
