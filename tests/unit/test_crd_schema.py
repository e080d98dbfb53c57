"""The CRD file itself: a structural schema that `kubectl explain` can describe field by field."""
import yaml

from operator_samples import ROOT

CRD = yaml.safe_load((ROOT / "crds" / "modeldeployments.modelops.io.yaml").read_text())
ROOT_SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
KEYWORDS = {"type", "description", "properties", "required", "items", "enum", "default", "minimum", "maximum",
            "minLength", "maxLength", "maxItems", "pattern", "format", "additionalProperties", "anyOf",
            "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
            "x-kubernetes-list-type", "x-kubernetes-list-map-keys"}


def nodes(node, path="", in_list_item=False):
    yield path, node, in_list_item
    for key, child in (node.get("properties") or {}).items():
        yield from nodes(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]", True)


def test_every_schema_node_uses_only_openapi_keywords():
    # A stray key is usually a YAML slip (an unquoted comma in a flow-style description).
    for path, node, _ in nodes(ROOT_SCHEMA):
        assert set(node) <= KEYWORDS, f"{path}: unknown keys {set(node) - KEYWORDS}"


def test_every_spec_field_has_a_description():
    spec = ROOT_SCHEMA["properties"]["spec"]
    missing = [path for path, node, in_item in nodes(spec, "spec") if not node.get("description") and not in_item]
    assert missing == []


def test_every_number_in_the_spec_is_bounded_and_every_closed_set_is_an_enum():
    spec = ROOT_SCHEMA["properties"]["spec"]
    for path, node, _ in nodes(spec, "spec"):
        if node.get("type") in ("integer", "number"):
            assert "minimum" in node and "maximum" in node, f"{path} is unbounded"
    assert spec["properties"]["training"]["properties"]["strategy"]["properties"]["type"]["enum"]
    assert spec["properties"]["evaluation"]["properties"]["metric"]["enum"]
