"""The drift reference in the manifest, written by the trainer and read by the server, and PSI itself."""
import json
import math

import pytest

from modelops_contracts import drift, manifest


def reference():
    return drift.Reference("features", 500, (drift.FeatureBins("age", (30.0, 50.0), (0.25, 0.5, 0.25)),
                                             drift.FeatureBins("flag", (0.5,), (0.9, 0.1))))


def sample_manifest(**overrides):
    m = manifest.Manifest(namespace="ml", name="m", version="v1", task="regression", feature_names=["age", "flag"])
    for k, v in overrides.items():
        setattr(m, k, v)
    return m


def test_a_manifest_carries_its_reference_both_ways():
    m = sample_manifest(reference=reference())
    back = manifest.Manifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back.reference == reference()


def test_an_older_manifest_without_a_reference_still_reads():
    wire = sample_manifest().to_dict()
    assert "reference" not in wire
    assert manifest.Manifest.from_dict(wire).reference is None


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r["features"][0].update(edges=[50.0, 30.0]), r"features\[0\]\.edges"),
    (lambda r: r["features"][1].update(shares=[0.9]), r"features\[1\]\.shares: expected 2"),
    (lambda r: r["features"][1].update(shares=[0.9, 0.2]), r"features\[1\]\.shares: expected non-negative"),
    (lambda r: r["features"][0].update(edges=[30.0, "x"]), r"features\[0\]\.edges"),
    (lambda r: r.update(rows=0), r"reference\.rows"),
    (lambda r: r.update(features=[]), r"reference: expected"),
])
def test_a_malformed_reference_makes_the_manifest_invalid_naming_the_field(mutate, where):
    wire = sample_manifest(reference=reference()).to_dict()
    mutate(wire["reference"])
    with pytest.raises(manifest.ManifestError, match=where):
        manifest.Manifest.from_dict(wire)


def test_psi_is_zero_for_the_reference_distribution_itself():
    assert drift.psi((0.25, 0.5, 0.25), (25, 50, 25)) == pytest.approx(0.0)


def test_psi_grows_with_the_shift_and_stays_finite_for_empty_bins():
    small = drift.psi((0.25, 0.5, 0.25), (30, 45, 25))
    large = drift.psi((0.25, 0.5, 0.25), (0, 0, 100))
    assert 0 < small < 0.1 < 0.25 < large and math.isfinite(large)
    by_hand = sum((a - e) * math.log(a / e) for e, a in [(0.25, 0.3), (0.5, 0.45), (0.25, 0.25)])
    assert small == pytest.approx(by_hand)


def test_psi_of_no_live_rows_is_zero_and_mismatched_bins_are_an_error():
    assert drift.psi((0.5, 0.5), (0, 0)) == 0.0
    with pytest.raises(ValueError, match="3 live bins for 2"):
        drift.psi((0.5, 0.5), (1, 2, 3))
