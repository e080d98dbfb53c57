"""LiveFigures: the server's /v1/live answer read back by the operator, and folded over replicas."""
import json
import math

import pytest

from modelops_contracts.live import LiveError, LiveFigures, aggregate


def figures(replica="p-1", **overrides):
    d = dict(version="v2", replica=replica, window_seconds=300.0, metric="accuracy", value=0.9, pairs=100,
             requests=400, errors=2, latency_p99_ms=12.5, drift={"age": 0.05, "income": 0.3}, drift_score=0.3)
    d.update(overrides)
    return LiveFigures(**d)


def test_figures_round_trip_through_json_with_camel_case_keys():
    f = figures()
    wire = json.loads(json.dumps(f.to_dict()))
    assert {"windowSeconds", "latencyP99Ms", "driftScore", "pairs", "requests", "errors"} <= set(wire)
    assert LiveFigures.from_dict(wire) == f


def test_an_empty_window_round_trips_with_nulls_and_says_why_drift_is_absent():
    f = figures(value=None, pairs=0, requests=0, errors=0, latency_p99_ms=None, drift={}, drift_score=None,
                drift_reason="the manifest has no reference distribution")
    wire = json.loads(json.dumps(f.to_dict()))
    assert wire["value"] is None and wire["driftReason"].startswith("the manifest")
    assert LiveFigures.from_dict(wire) == f


@pytest.mark.parametrize("key, bad", [("value", float("nan")), ("latencyP99Ms", float("inf")),
                                      ("pairs", -1), ("requests", 1.5), ("errors", True), ("version", 2),
                                      ("driftScore", "high"), ("windowSeconds", None)])
def test_bad_figures_are_refused_naming_the_field(key, bad):
    wire = figures().to_dict()
    wire[key] = bad
    with pytest.raises(LiveError, match=key):
        LiveFigures.from_dict(wire)


def test_a_non_finite_drift_score_of_one_feature_is_refused_naming_it():
    with pytest.raises(LiveError, match=r"drift\.age"):
        figures(drift={"age": math.nan})


def test_aggregate_weights_the_metric_by_pairs_and_sums_the_counts():
    a = figures("p-1", value=1.0, pairs=30, requests=100, errors=1, latency_p99_ms=10.0)
    b = figures("p-2", value=0.6, pairs=10, requests=300, errors=4, latency_p99_ms=40.0)
    total = aggregate([b, a])
    assert total.value == pytest.approx((1.0 * 30 + 0.6 * 10) / 40)
    assert (total.pairs, total.requests, total.errors) == (40, 400, 5)
    assert total.latency_p99_ms == 40.0 and total.replica == "p-1,p-2"
    assert total.error_rate == pytest.approx(5 / 400)


def test_aggregate_is_exact_for_a_mean_metric():
    # 3 of 4 right on one replica and 1 of 2 on the other is 4 of 6 pooled: the weighted mean is that.
    a, b = figures("a", value=0.75, pairs=4), figures("b", value=0.5, pairs=2)
    assert aggregate([a, b]).value == pytest.approx(4 / 6)


def test_aggregate_ignores_replicas_without_pairs_for_the_metric():
    a = figures("a", value=0.8, pairs=50)
    idle = figures("b", value=None, pairs=0, requests=0, errors=0, latency_p99_ms=None)
    total = aggregate([a, idle])
    assert total.value == 0.8 and total.latency_p99_ms == a.latency_p99_ms


def test_no_pairs_anywhere_gives_no_value():
    idle = [figures(r, value=None, pairs=0) for r in ("a", "b")]
    assert aggregate(idle).value is None


def test_aggregate_drift_weights_by_requests_and_scores_the_worst_feature():
    a = figures("a", requests=100, drift={"age": 0.0, "income": 0.1})
    b = figures("b", requests=300, drift={"age": 0.4, "income": 0.1})
    total = aggregate([a, b])
    assert total.drift == {"age": pytest.approx(0.3), "income": pytest.approx(0.1)}
    assert total.drift_score == pytest.approx(0.3)


def test_aggregate_without_any_drift_keeps_the_reason():
    a = figures("a", drift={}, drift_score=None, drift_reason="no reference")
    total = aggregate([a, a])
    assert total.drift == {} and total.drift_score is None and total.drift_reason == "no reference"


@pytest.mark.parametrize("others", [[figures("b", version="v3")], [figures("b", metric="mae")]])
def test_aggregate_refuses_figures_of_different_versions_or_metrics(others):
    with pytest.raises(LiveError, match="one version and metric"):
        aggregate([figures("a")] + others)


def test_aggregate_of_nothing_is_an_error():
    with pytest.raises(LiveError, match="no replica"):
        aggregate([])
