"""The trainer's reference distribution, as the server reads it: binned by the contract's rule."""
import numpy as np
import pytest

from modelops_contracts import drift
from modelops_contracts.manifest import Manifest
from modelops_contracts.signature import tabular
from modelops_serving.live import drift_scores
from modelops_training.reference import of, table_reference


def test_the_training_data_scores_no_drift_against_its_own_reference_and_a_shift_scores_high():
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.normal(50, 10, 2000), rng.integers(0, 3, 2000), np.zeros(2000)])
    ref = table_reference(x, ["age", "group", "constant"], "features")
    assert [f.name for f in ref.features] == ["age", "group", "constant"] and ref.rows == 2000
    assert len(ref.features[0].edges) == drift.BINS - 1
    assert all(sum(f.shares) == pytest.approx(1.0) for f in ref.features)
    assert max(drift_scores(ref, x).values()) == pytest.approx(0.0, abs=1e-9)
    shifted = x + np.array([15.0, 0.0, 0.0])
    scores = drift_scores(ref, shifted)
    assert scores["age"] > 0.25 and scores["group"] == pytest.approx(0.0, abs=1e-9)


def test_the_reference_survives_the_manifest_round_trip():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    ref = table_reference(x, ["a", "b"], "features")
    m = Manifest(namespace="n", name="m", version="v1", task="regression", feature_names=["a", "b"], reference=ref)
    assert Manifest.from_dict(m.to_dict()).reference == ref


def test_only_a_table_feeding_one_input_gets_a_reference():
    table = np.zeros((10, 3), dtype=np.float32)
    assert of(table, ["a", "b", "c"], tabular(3, 1)).input == "features"
    assert of(np.zeros((10, 8, 8, 1)), [], tabular(3, 1)) is None                      # images
    assert of({"a": table, "b": table}, [], tabular(3, 1)) is None                     # named inputs
    assert of(np.zeros((10, drift.MAX_FEATURES + 1)), [], tabular(drift.MAX_FEATURES + 1, 1)) is None
