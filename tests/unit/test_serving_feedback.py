"""Feedback joins predictions with ground truth over bounded windows."""
import numpy as np
import pytest

from modelops_serving.errors import HttpError
from modelops_serving.feedback import Feedback


def probabilities(*classes, width=3):
    return np.eye(width, dtype=np.float32)[list(classes)]


def test_classification_accuracy_from_feedback_by_id():
    fb = Feedback("classification", ["cat", "dog", "owl"], window=10, memory_rows=100)
    fb.remember("p1", probabilities(0, 1))
    fb.remember("p2", probabilities(2))
    assert fb.join_id("p1", ["cat", "owl"]) == 2
    assert fb.join_id("p2", "owl") == 1
    assert fb.live_metrics() == {"accuracy": pytest.approx(2 / 3)}


def test_regression_error_from_features_and_truth():
    fb = Feedback("regression", [], window=10, memory_rows=100)
    fb.join_outputs(np.array([[1.0], [3.0]], dtype=np.float32), [2.0, 3.0])
    assert fb.live_metrics() == {"mse": pytest.approx(0.5), "mae": pytest.approx(0.5)}


def test_feedback_is_accepted_once_per_prediction():
    fb = Feedback("regression", [], window=10, memory_rows=100)
    fb.remember("p1", np.array([[1.0]], dtype=np.float32))
    fb.join_id("p1", 1.0)
    with pytest.raises(HttpError) as e:
        fb.join_id("p1", 1.0)
    assert e.value.status == 404 and "already has feedback" in e.value.message


@pytest.mark.parametrize("task, classes, truth, words", [
    ("classification", ["cat", "dog", "owl"], ["cow"], "not one of the classes"),
    ("regression", [], ["high"], "finite number"),
    ("regression", [], [1.0, 2.0], "2 values for 1 predicted rows"),
])
def test_truth_that_cannot_be_joined_is_refused(task, classes, truth, words):
    fb = Feedback(task, classes, window=10, memory_rows=100)
    fb.remember("p1", probabilities(0) if task == "classification" else np.array([[1.0]], dtype=np.float32))
    with pytest.raises(HttpError) as e:
        fb.join_id("p1", truth)
    assert e.value.status == 400 and words in e.value.message


def test_memory_and_windows_stay_bounded_whatever_the_traffic():
    fb = Feedback("regression", [], window=50, memory_rows=100)
    for i in range(5000):
        fb.remember(f"p{i}", np.full((3, 1), float(i), dtype=np.float32))
        fb.join_outputs(np.array([[float(i)]], dtype=np.float32), float(i) + 1)
    assert fb._recent_rows <= 100 and len(fb._recent) <= 34
    assert fb.pairs == 50 and fb.live_metrics()["mae"] == pytest.approx(1.0)
    with pytest.raises(HttpError):
        fb.join_id("p0", [1.0, 1.0, 1.0])   # evicted long ago
    assert fb.join_id("p4999", [0.0, 0.0, 0.0]) == 3


def test_prediction_distribution_summarises_recent_predictions():
    fb = Feedback("classification", ["cat", "dog"], window=4, memory_rows=10)
    fb.remember("p1", probabilities(0, 0, 1, 1, 1, width=2))
    assert fb.distribution() == {"class=cat": 0.25, "class=dog": 0.75}   # the window keeps the last 4
    reg = Feedback("regression", [], window=100, memory_rows=10)
    reg.remember("p1", np.arange(101, dtype=np.float32).reshape(-1, 1))
    assert reg.distribution()["p50"] == pytest.approx(50.5)   # of 1..100: the window dropped the 0
