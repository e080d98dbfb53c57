"""The canary judge: every decision, from live figures folded over replicas, without a cluster."""
import pytest

from modelops_contracts.live import LiveFigures, aggregate
from modelops_operator import canary as k
from modelops_operator.rollout import Rollout

CANARY = Rollout(strategy="Canary", min_pairs=100, min_duration_s=300, max_metric_drop=0.02,
                 max_error_rate=0.01, max_p99_ratio=1.5, timeout_s=3600)


def live(value=0.9, pairs=200, requests=400, errors=0, p99=20.0, metric="accuracy", version="v2", replica="p"):
    return LiveFigures(version=version, replica=replica, window_seconds=600, metric=metric, value=value,
                       pairs=pairs, requests=requests, errors=errors, latency_p99_ms=p99)


STABLE = live(version="v1", value=0.9, pairs=1000, requests=2000, p99=20.0)


def judge(canary, stable=STABLE, *, rollout=CANARY, ready_for_s=400.0, age_s=500.0, manual=None):
    return k.judge(rollout, canary, stable, ready_for_s=ready_for_s, age_s=age_s, manual=manual)


def test_a_canary_as_good_as_stable_after_the_minimum_time_and_pairs_is_promoted():
    v = judge(live(value=0.89))   # a drop of 0.01, inside the 0.02 margin
    assert (v.action, v.reason) == (k.PROMOTE, "CanaryPassed")
    assert v.figures["canaryValue"] == 0.89 and v.figures["stableValue"] == 0.9 and v.figures["canaryPairs"] == 200
    assert "accuracy=0.89 over 200 pairs" in v.message


def test_a_metric_drop_past_the_margin_aborts_at_once_without_waiting_for_the_minimum_time():
    v = judge(live(value=0.85), ready_for_s=10.0, age_s=20.0)
    assert (v.action, v.reason) == (k.ABORT, "MetricDropped")
    assert "drop 0.05 > 0.02" in v.message


def test_for_a_lower_is_better_metric_a_rise_is_the_drop():
    stable = live(version="v1", metric="mae", value=1.0, pairs=500)
    assert judge(live(metric="mae", value=1.05), stable).reason == "MetricDropped"
    assert judge(live(metric="mae", value=0.5), stable).action == k.PROMOTE
    assert judge(live(metric="mae", value=1.015), stable).action == k.PROMOTE


def test_exactly_the_margin_still_passes():
    stable = live(version="v1", value=0.5, pairs=500)   # exact in binary: 0.5 - 0.25 == 0.25
    assert judge(live(value=0.25), stable, rollout=Rollout(strategy="Canary", max_metric_drop=0.25)).action == k.PROMOTE


def test_too_few_pairs_on_either_side_waits_and_says_for_what():
    v = judge(live(pairs=99, value=0.1))   # a terrible value, but on too few pairs to judge
    assert (v.action, v.reason) == (k.WAIT, "Judging") and "canary labeled pairs (99/100)" in v.message
    v = judge(live(), live(version="v1", pairs=10))
    assert v.action == k.WAIT and "stable labeled pairs (10/100)" in v.message
    assert judge(live(), None).action == k.WAIT


def test_the_minimum_time_holds_a_promotion_but_not_an_abort():
    v = judge(live(), ready_for_s=299.0)
    assert v.action == k.WAIT and "time (299/300 s)" in v.message
    assert judge(live(), ready_for_s=300.0).action == k.PROMOTE


def test_nothing_is_promoted_before_every_canary_pod_is_ready():
    v = judge(live(), ready_for_s=None)
    assert v.action == k.WAIT and "every canary pod to be ready" in v.message


def test_an_error_rate_past_the_bound_aborts_once_enough_requests_were_served():
    assert judge(live(requests=100, errors=2)).reason == "ErrorRateExceeded"   # 0.02 > 0.01
    assert judge(live(requests=100, errors=1)).action == k.PROMOTE             # 0.01 is within
    few = judge(live(requests=50, errors=50, pairs=0, value=None))             # 50 requests: too few to judge
    assert few.action == k.WAIT and "canary requests (50/100)" in few.message


def test_p99_latency_is_judged_against_the_stable_version_and_an_absolute_bound():
    assert judge(live(p99=31.0)).reason == "LatencyExceeded"     # > 1.5 x 20 ms
    assert judge(live(p99=30.0)).action == k.PROMOTE
    bounded = Rollout(strategy="Canary", max_p99_ms=25.0, max_metric_drop=0.02)
    v = judge(live(p99=26.0), rollout=bounded)
    assert v.reason == "LatencyExceeded" and "p99 26 ms > 25 ms" in v.message
    # The stable version's p99 on too few requests is no yardstick.
    assert judge(live(p99=100.0), live(version="v1", requests=10, p99=1.0, pairs=500)).action == k.PROMOTE


def test_every_failure_is_named_in_the_message():
    v = judge(live(value=0.5, requests=200, errors=20, p99=90.0))
    assert v.reason == "ErrorRateExceeded"
    assert "error rate 0.1" in v.message and "p99 90 ms" in v.message and "drop 0.4" in v.message


def test_different_metrics_cannot_be_compared():
    v = judge(live(metric="mae"), STABLE)
    assert v.action == k.WAIT and "comparable metrics (canary mae, stable accuracy)" in v.message


def test_no_decision_in_time_holds_by_default_and_aborts_when_asked():
    v = judge(live(pairs=3), age_s=3600.0)
    assert (v.action, v.reason) == (k.HOLD, "CanaryInconclusive")
    assert "timeoutSeconds 3600" in v.message and "modelops.io/rollout=promote or abort" in v.message
    aborting = Rollout(strategy="Canary", on_timeout="Abort", max_metric_drop=0.02)
    assert judge(live(pairs=3), rollout=aborting, age_s=3601.0).reason == "CanaryTimedOut"
    assert judge(live(pairs=3), rollout=aborting, age_s=3599.0).action == k.WAIT
    assert judge(live(), age_s=9999.0).action == k.PROMOTE   # a decision, late, is still a decision


def test_a_manual_request_wins_over_the_figures():
    assert judge(live(value=0.1), manual=k.PROMOTE).reason == "ManualPromote"
    assert judge(live(), manual="Abort").reason == "ManualAbort"
    assert judge(None, None, ready_for_s=None, manual=k.PROMOTE).action == k.PROMOTE


def test_figures_over_replicas_are_judged_as_one_version():
    replicas = [live(value=1.0, pairs=60, requests=60, replica="a"), live(value=0.8, pairs=60, requests=60, replica="b")]
    v = judge(aggregate(replicas))
    assert v.action == k.PROMOTE and v.figures["canaryPairs"] == 120 and v.figures["canaryValue"] == pytest.approx(0.9)


@pytest.mark.parametrize("annotations, expected", [
    (None, (None, None)), ({}, (None, None)), ({"other": "promote"}, (None, None)),
    ({k.ANNOTATION: "promote"}, (k.PROMOTE, None)), ({k.ANNOTATION: " Abort "}, ("Abort", None)),
])
def test_the_annotation_is_read(annotations, expected):
    assert k.manual_request(annotations) == expected


def test_an_unknown_annotation_value_is_a_problem_naming_it():
    action, problem = k.manual_request({k.ANNOTATION: "yes"})
    assert action is None and problem == "annotation modelops.io/rollout='yes' is not a rollout request: use promote or abort"


def test_clearing_the_annotation_is_guarded_by_the_value_read():
    assert k.json_patch_clearing("promote") == [
        {"op": "test", "path": "/metadata/annotations/modelops.io~1rollout", "value": "promote"},
        {"op": "remove", "path": "/metadata/annotations/modelops.io~1rollout"}]


def test_figures_published_in_status_come_back_as_they_were_read_less_the_replica_names():
    from dataclasses import replace

    from modelops_operator import live as reader
    read = {"v1": STABLE, "v2": live(value=0.88, p99=None)}
    status = {"live": reader.status_of(reader.Reading(at="2026-12-01T12:00:00Z", versions=read), "v1")}
    back = reader.published(status)
    assert back == {v: replace(f, replica="") for v, f in read.items()}
    assert judge(back["v2"], back["v1"]) == judge(read["v2"], read["v1"])
    status["live"]["versions"]["v3"] = {"metric": "accuracy", "pairs": -1}   # malformed: left out, not fatal
    assert set(reader.published(status)) == {"v1", "v2"} and reader.published({}) == {}
