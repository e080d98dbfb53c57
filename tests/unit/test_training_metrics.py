"""Held-out metrics computed from predictions, shared by Keras and LiteRT evaluation."""
import numpy as np
import pytest

from modelops_training import metrics
from modelops_training.errors import BadData


def test_regression_metrics():
    m = metrics.evaluate("regression", np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0], [5.0]]))
    assert m == pytest.approx({"mse": 4 / 3, "mae": 2 / 3, "r2": 1 - 4 / 2})


def test_binary_auc_counts_ordered_pairs_with_ties_as_half():
    positive = np.array([True, True, False, False])
    assert metrics.binary_auc(positive, np.array([0.9, 0.4, 0.4, 0.1])) == pytest.approx(3.5 / 4)
    assert metrics.binary_auc(positive, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0


def test_classification_metrics_from_probabilities():
    y = np.array([0, 1, 2, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    m = metrics.evaluate("classification", y, probs)
    assert m["accuracy"] == 0.75
    assert m["logloss"] == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.4, 0.3])))
    assert 0.5 < m["auc"] <= 1.0


@pytest.mark.parametrize("before, after, higher_is_better, expected", [
    (0.95, 0.93, True, 0.02),     # accuracy fell: worse
    (0.10, 0.12, False, 0.02),    # mse rose: worse
    (0.10, 0.09, False, -0.01),   # mse fell: better
])
def test_degradation_is_positive_when_the_metric_got_worse(before, after, higher_is_better, expected):
    assert metrics.degradation(before, after, higher_is_better) == pytest.approx(expected)


def test_an_undefined_gated_metric_fails_the_stage_with_bad_data_and_why():
    one_class = metrics.evaluate("classification", np.array([1, 1, 1]), np.array([[0.2, 0.8]] * 3))
    assert np.isnan(one_class["auc"])
    with pytest.raises(BadData, match=r"evaluation\.metric: auc is nan .*two classes"):
        metrics.reportable(one_class, "auc", "held-out split")


def test_undefined_metrics_that_are_not_gated_are_left_out_of_the_report():
    one_class = metrics.evaluate("classification", np.array([1, 1, 1]), np.array([[0.2, 0.8]] * 3))
    assert metrics.reportable(one_class, "accuracy", "held-out split") == {
        "accuracy": 1.0, "logloss": pytest.approx(-np.log(0.8))}
