"""The image allow-list: which images a spec may name, and the refusal that names the field."""
from modelops_operator import imagepolicy
from modelops_operator.spec import parse
from operator_samples import example

ALLOWED = imagepolicy.parse_allowed(" registry.example.com/ml/, ghcr.io/modelops/ ,")


def spec_with(training=None, serving=None):
    raw = example("digits-classifier")["spec"]
    if training:
        raw["training"]["image"] = training
    if serving:
        raw.setdefault("serving", {})["image"] = serving
    return parse(raw)


def test_an_empty_list_allows_any_image():
    assert imagepolicy.parse_allowed("") == ()
    assert imagepolicy.refusal(spec_with("evil.example/x:1", "evil.example/y:1"), ()) is None


def test_images_under_an_allowed_prefix_pass_and_the_operators_defaults_are_not_the_users():
    assert ALLOWED == ("registry.example.com/ml/", "ghcr.io/modelops/")
    assert imagepolicy.refusal(spec_with(), ALLOWED) is None
    assert imagepolicy.refusal(spec_with("registry.example.com/ml/train:2", "ghcr.io/modelops/serve:1"), ALLOWED) is None


def test_a_refusal_names_the_field_the_image_and_what_is_allowed():
    assert imagepolicy.refusal(spec_with("registry.example.com/mlx/train:2"), ALLOWED) == (
        "spec.training.image: image registry.example.com/mlx/train:2 is not allowed "
        "(allowed image prefixes: registry.example.com/ml/, ghcr.io/modelops/)")
    refused = imagepolicy.refusal(spec_with("registry.example.com/ml/t:1", "docker.io/me/serve"), ALLOWED)
    assert refused.startswith("spec.serving.image: image docker.io/me/serve is not allowed")
