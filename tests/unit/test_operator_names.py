"""Every name derived from a ModelDeployment's name fits its limit; the CRD's rule says the same number."""
import pytest
import yaml

from modelops_operator import names
from modelops_operator.spec import SpecError
from operator_samples import ROOT

CRD = yaml.safe_load((ROOT / "crds" / "modeldeployments.modelops.io.yaml").read_text())
NAME_RULES = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]


def test_the_limit_comes_from_the_longest_derived_name():
    at_limit = "m" * names.max_name_length()
    derived = names.derived_names(at_limit)
    assert max(len(n) for n in derived.values()) == names.DNS_LABEL_MAX
    assert derived["training Job's workers Service"] == f"{at_limit}-train-v999999-a11-workers"
    assert max(len(n) for n in names.derived_names(at_limit + "m").values()) == names.DNS_LABEL_MAX + 1


def test_the_crd_rule_uses_the_computed_limit_and_the_same_words():
    limit = names.max_name_length()
    assert NAME_RULES[0]["rule"] == f"size(self.metadata.name) <= {limit}"
    assert NAME_RULES[0]["message"] == names.LENGTH_MESSAGE.format(limit=limit, suffix=names.longest_suffix())
    assert NAME_RULES[1]["rule"] == f"self.metadata.name.matches('{names.DNS_1035_LABEL.pattern}')"
    assert NAME_RULES[1]["message"] == names.SHAPE_MESSAGE


def test_check_name_at_and_past_the_limit():
    names.check_name("a" * names.max_name_length())
    with pytest.raises(SpecError, match="at most 37 characters"):
        names.check_name("a" * (names.max_name_length() + 1))
    for bad in ("1digits", "digits.v2", "Digits", "digits-"):
        with pytest.raises(SpecError, match="DNS-1035"):
            names.check_name(bad)
