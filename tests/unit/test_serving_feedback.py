"""Feedback joins predictions with ground truth over bounded windows."""
import numpy as np
import pytest

from modelops_contracts.feedback import FeedbackRecord
from modelops_serving.errors import HttpError
from modelops_serving.feedback import Feedback


def probabilities(*classes, width=3):
    return np.eye(width, dtype=np.float32)[list(classes)]


def test_classification_accuracy_from_feedback_by_id():
    fb = Feedback("classification", ["cat", "dog", "owl"], window=10, memory_rows=100)
    fb.remember("p1", probabilities(0, 1))
    fb.remember("p2", probabilities(2))
    assert fb.join_id("p1", ["cat", "owl"]).rows == 2
    assert fb.join_id("p2", "owl").rows == 1
    assert fb.live_metrics() == {"accuracy": pytest.approx(2 / 3)}


def test_regression_error_from_features_and_truth():
    fb = Feedback("regression", [], window=10, memory_rows=100)
    fb.join_outputs("f1", [np.zeros((2, 1))], np.array([[1.0], [3.0]], dtype=np.float32), [2.0, 3.0])
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
        fb.join_outputs(f"f{i}", [np.zeros((1, 1))], np.array([[float(i)]], dtype=np.float32), float(i) + 1)
    assert fb._recent_rows <= 100 and len(fb._recent) <= 34
    assert fb.pairs == 50 and fb.live_metrics()["mae"] == pytest.approx(1.0)
    with pytest.raises(HttpError):
        fb.join_id("p0", [1.0, 1.0, 1.0])   # evicted long ago
    assert fb.join_id("p4999", [0.0, 0.0, 0.0]).rows == 3


def test_prediction_distribution_summarises_recent_predictions():
    fb = Feedback("classification", ["cat", "dog"], window=4, memory_rows=10)
    fb.remember("p1", probabilities(0, 0, 1, 1, 1, width=2))
    assert fb.distribution() == {"class=cat": 0.25, "class=dog": 0.75}   # the window keeps the last 4
    reg = Feedback("regression", [], window=100, memory_rows=10)
    reg.remember("p1", np.arange(101, dtype=np.float32).reshape(-1, 1))
    assert reg.distribution()["p50"] == pytest.approx(50.5)   # of 1..100: the window dropped the 0


def test_a_joined_prediction_becomes_a_record_with_its_inputs_prediction_and_truth_as_sent():
    fb = Feedback("classification", ["cat", "dog", "owl"], window=10, memory_rows=100, version="v4",
                  input_names=["features"], clock=lambda: 1234.5)
    fb.remember("p1", probabilities(0, 2), [np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)])
    record = fb.join_id("p1", ["cat", "dog"])
    assert record == FeedbackRecord(prediction_id="p1", version="v4", inputs={"features": [[1.0, 2.0], [3.0, 4.0]]},
                                    prediction=[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], truth=["cat", "dog"], time=1234.5)


def test_string_inputs_are_kept_as_text():
    fb = Feedback("regression", [], window=10, memory_rows=100, input_names=["text"])
    fb.remember("p1", np.array([[0.5]], dtype=np.float32), [np.array([[b"caf\xc3\xa9"]], dtype=object)])
    assert fb.join_id("p1", 1.0).inputs == {"text": [["café"]]}


def test_truth_for_a_prediction_made_elsewhere_is_checked_and_kept_unjoined_outside_the_metric():
    fb = Feedback("classification", ["cat", "dog"], window=10, memory_rows=100, version="v2")
    record = fb.unjoined("x-1@10.0.0.9~ab", ["dog"])
    assert (record.joined, record.truth, record.inputs, record.prediction) == (False, ["dog"], {}, None)
    assert fb.pairs == 0 and fb.live_metrics() == {}
    with pytest.raises(HttpError) as e:
        fb.unjoined("x-2", ["cow"])
    assert e.value.status == 400 and "truth[0]" in e.value.message


def test_the_window_of_pairs_can_be_cut_by_time():
    now = [100.0]
    fb = Feedback("regression", [], window=10, memory_rows=100, clock=lambda: now[0])
    fb.join_outputs("a", [np.zeros((1, 1))], np.array([[1.0]]), 2.0)
    now[0] = 200.0
    fb.join_outputs("b", [np.zeros((1, 1))], np.array([[5.0]]), 5.0)
    truths, rows = fb.window(since=150.0)
    assert truths.tolist() == [5.0] and rows.tolist() == [[5.0]]
    assert len(fb.window()[0]) == 2
