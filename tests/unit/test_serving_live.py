"""The replica's live figures: the sliding request window, p99, drift against the reference, the metric."""
import numpy as np
import pytest

from modelops_contracts import drift
from modelops_contracts.manifest import Manifest
from modelops_serving.feedback import Feedback
from modelops_serving.live import SLOTS, InputWindow, LiveMonitor, RequestWindow, drift_scores, live_metric, metric_value


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_requests_errors_and_p99_over_the_window_then_the_window_slides():
    clock = Clock()
    window = RequestWindow(60.0, clock)
    for i in range(990):
        window.observe(0.010, error=False)
    for i in range(10):
        window.observe(0.500, error=True)
    requests, errors, p99 = window.figures()
    assert (requests, errors) == (1000, 10)
    assert p99 == pytest.approx(10.0, rel=0.06)     # the 990th of 1000 is a 10 ms one
    clock.now += 30
    window.observe(2.0, error=True)
    requests, errors, p99 = window.figures()
    assert (requests, errors) == (1001, 11) and p99 == pytest.approx(500.0, rel=0.06)
    clock.now += 60 - 60 / SLOTS / 2                # the first batch has slid out, the late one not
    assert window.figures()[:2] == (1, 1)
    clock.now += 60
    assert window.figures() == (0, 0, None)


def test_slots_stay_bounded_whatever_the_traffic():
    clock = Clock()
    window = RequestWindow(10.0, clock)
    for i in range(5000):
        clock.now += 0.1
        window.observe(0.001, error=False)
    assert len(window._slots) <= SLOTS + 1 and window.figures()[0] == pytest.approx(100, abs=5)


def test_input_rows_are_bounded_by_count_and_by_time():
    clock = Clock()
    inputs = InputWindow(rows=10, window_s=60.0, clock=clock)
    for i in range(8):
        inputs.append(np.full((3, 2), float(i)))
    recent = inputs.recent()
    assert len(recent) == 10 and recent[-1].tolist() == [7.0, 7.0]
    clock.now += 61
    assert inputs.recent() is None


REFERENCE = drift.Reference("features", 1000, (drift.FeatureBins("a", (0.0,), (0.5, 0.5)),
                                               drift.FeatureBins("b", (1.0, 2.0), (0.2, 0.6, 0.2))))


def test_drift_is_about_zero_for_the_reference_distribution_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    same = np.column_stack([rng.normal(size=5000), rng.choice([0.5, 1.5, 2.5], p=[0.2, 0.6, 0.2], size=5000)])
    scores = drift_scores(REFERENCE, same)
    assert scores["a"] < 0.01 and scores["b"] < 0.01
    shifted = same + np.array([3.0, 0.0])
    assert drift_scores(REFERENCE, shifted)["a"] > 1.0


def test_a_value_on_a_cut_point_counts_in_the_upper_bin_as_the_contract_says():
    rows = np.array([[0.0, 1.0], [0.0, 2.0]])
    # both 'a' values sit on the cut point 0.0: all in the upper bin, as searchsorted(..., "right") counts
    assert drift_scores(REFERENCE, rows)["a"] == pytest.approx(drift.psi((0.5, 0.5), (0, 2)))


def manifest(task="classification", metric=None, reference=None):
    return Manifest(namespace="ns", name="m", version="v3", task=task, feature_names=["a", "b"],
                    classes=["no", "yes"] if task == "classification" else [],
                    extra={"metric": metric} if metric else {}, reference=reference)


@pytest.mark.parametrize("task, metric, expected", [("classification", "auc", "auc"),
                                                    ("classification", None, "accuracy"),
                                                    ("classification", "mse", "accuracy"),
                                                    ("regression", "mae", "mae"), ("regression", "r2", "r2"),
                                                    ("regression", None, "mse")])
def test_the_live_metric_is_the_evaluation_metric_where_it_fits(task, metric, expected):
    assert live_metric(manifest(task, metric)) == expected


def test_metric_values_match_the_evaluation_formulas():
    truths = np.array([0.0, 1.0, 1.0, 0.0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert metric_value("classification", "accuracy", truths, probs) == 0.5
    assert metric_value("classification", "auc", truths, probs) == pytest.approx(0.75)
    assert metric_value("regression", "mae", np.array([1.0, 3.0]), np.array([[2.0], [3.0]])) == 0.5


def test_an_undefined_metric_has_no_value_rather_than_nan():
    one_class = np.array([1.0, 1.0])
    assert metric_value("classification", "auc", one_class, np.array([[0.2, 0.8], [0.4, 0.6]])) is None
    assert metric_value("classification", "accuracy", np.zeros(0), np.zeros((0, 2))) is None


def test_the_monitor_reports_this_replica_over_its_window():
    wall, mono = Clock(5000.0), Clock()
    fb = Feedback("classification", ["no", "yes"], window=100, memory_rows=100, clock=wall)
    monitor = LiveMonitor(manifest(metric="accuracy", reference=REFERENCE), fb, replica="pod-a", window_s=60.0,
                          rows=100, input_names=["features"], clock=mono, wall_clock=wall)
    fb.join_outputs("old", [np.zeros((1, 2))], np.array([[0.9, 0.1]]), "yes")      # wrong, and about to age out
    wall.now += 120
    monitor.observe_inputs([np.array([[-1.0, 1.5], [1.0, 1.5]])])
    monitor.requests.observe(0.002, error=False)
    fb.join_outputs("new", [np.zeros((2, 2))], np.array([[0.9, 0.1], [0.1, 0.9]]), ["no", "yes"])
    figures = monitor.figures()
    assert (figures.version, figures.replica, figures.metric, figures.value, figures.pairs) == \
        ("v3", "pod-a", "accuracy", 1.0, 2)
    assert figures.requests == 1 and figures.errors == 0 and figures.latency_p99_ms == pytest.approx(2.0, rel=0.06)
    assert set(figures.drift) == {"a", "b"} and figures.drift_score == max(figures.drift.values())


def test_without_a_reference_drift_is_absent_and_the_figures_say_why():
    fb = Feedback("regression", [], window=10, memory_rows=10)
    monitor = LiveMonitor(manifest("regression"), fb, replica="r", window_s=60.0, rows=10, input_names=["features"])
    figures = monitor.figures()
    assert figures.drift == {} and figures.drift_score is None and "no reference" in figures.drift_reason
    assert figures.value is None and figures.pairs == 0 and figures.latency_p99_ms is None
