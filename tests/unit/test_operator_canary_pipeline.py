"""The canary stage of the plan, scenario by scenario: v1 serves, v2 passes compression and is judged live."""
import pytest

from modelops_contracts.live import LiveFigures
from modelops_operator import builders as b
from modelops_operator import canary as k
from modelops_operator import live
from modelops_operator import pipeline as p
from modelops_operator.conditions import get_condition
from modelops_operator.spec import parse
from operator_samples import body
from test_operator_pipeline import finished, kinds, rolled_out

IMAGES = b.Images()
T0 = "2026-11-29T12:00:00Z"


def at(seconds: int) -> str:
    return f"2026-11-29T{12 + seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"


def step(md, observed=None, now=T0):
    plan = p.plan(md, parse(md["spec"]), observed or p.Observed(), IMAGES, now)
    md["status"] = plan.status
    return plan


def figures(version, value, pairs=500, requests=1000, errors=0, p99=10.0):
    return LiveFigures(version=version, replica="pod", window_seconds=600, metric="accuracy", value=value,
                       pairs=pairs, requests=requests, errors=errors, latency_p99_ms=p99)


def reading(canary_value=None, stable_value=0.9, **canary):
    versions = {"v1": figures("v1", stable_value, pairs=2000, requests=4000)}
    if canary_value is not None:
        versions["v2"] = figures("v2", canary_value, **canary)
    return live.Reading(at=T0, versions=versions)


def canary_state(version="v2", ready=1, rolled=True):
    return p.DeploymentState(version=version, desired=1, replicas=1, ready=ready, updated=1, rolled_out=rolled,
                             available=ready)


def observed(stable="v1", canary=None, live=None, **jobs):
    return p.Observed(deployment=rolled_out(stable), canary=canary, live=live, **jobs)


def serving(md, strategy="Canary", **canary):
    md["spec"]["serving"]["rollout"] = {"strategy": strategy, "canary": {"minDurationSeconds": 60, **canary}}


def events(plan):
    return [e[:2] for e in plan.events]


def deployment_version(plan, name):
    found = [o for o in plan.apply if o["kind"] == "Deployment" and o["metadata"]["name"] == name]
    return found[0]["spec"]["template"]["metadata"]["labels"]["modelops.io/model-version"] if found else None


@pytest.fixture
def md():
    """v1 serving with strategy Canary, and v2 (a training change) through training and compression."""
    md = body()
    serving(md)
    md["spec"]["monitoring"] = {"enabled": True}   # the replicas keep feedback, the operator reads their figures
    step(md)
    step(md, p.Observed(training_job=finished("train", accuracy=0.95)))
    plan = step(md, p.Observed(compression_job=finished("compress", accuracy=0.95)))
    assert deployment_version(plan, "digits-canary") is None   # nothing stable to compare the first version with
    step(md, observed())
    assert md["status"]["phase"] == "Ready" and md["status"]["modelVersion"] == "v1"
    md["spec"]["training"]["hyperparameters"]["epochs"] = 20
    md["metadata"]["generation"] = 2
    step(md, observed())
    step(md, observed(training_job=finished("train", accuracy=0.97)))
    return md


def start_canary(md):
    return step(md, observed(compression_job=finished("compress", accuracy=0.97)))


def test_a_version_that_passed_compression_starts_as_a_canary_beside_the_stable_one(md):
    plan = start_canary(md)
    assert deployment_version(plan, "digits") == "v1" and deployment_version(plan, "digits-canary") == "v2"
    status = md["status"]
    assert status["phase"] == "Canary" and status["modelVersion"] == "v1"
    assert status["pipeline"]["stage"] == "canary" and status["pipeline"]["canaryStartedAt"] == T0
    assert status["canary"]["version"] == "v2" and status["canary"]["stableVersion"] == "v1"
    assert status["canary"]["decision"] == k.WAIT and status["canary"]["ready"] == "0/0"
    assert "every canary pod to be ready" in status["message"]
    assert get_condition(status["conditions"], "Canary")["status"] == "Unknown"
    assert get_condition(status["conditions"], "Ready")["status"] == "True"   # v1 serves throughout
    assert plan.recheck_after_s == 60 and plan.delete == []


def test_a_better_canary_is_promoted_and_retired_only_once_the_stable_deployment_runs_it(md):
    start_canary(md)
    step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(10))
    assert md["status"]["pipeline"]["canaryReadySince"] == at(10) and md["status"]["canary"]["ready"] == "1/1"
    plan = step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(69))
    assert md["status"]["canary"]["decision"] == k.WAIT and "time (59/60 s)" in md["status"]["message"]
    plan = step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(70))
    assert ("Normal", "CanaryPromoted") in events(plan)
    assert deployment_version(plan, "digits") == "v2"
    assert ("Deployment", "digits-canary") not in plan.delete           # still serving while the stable one rolls
    assert md["status"]["phase"] == "Deploying" and "canary" not in md["status"]
    assert get_condition(md["status"]["conditions"], "Canary")["reason"] == "CanaryPassed"
    rolling = p.DeploymentState(version="v2", desired=2, replicas=3, ready=2, updated=1, rolled_out=False, available=2)
    plan = step(md, p.Observed(deployment=rolling, canary=canary_state()), now=at(80))
    assert ("Deployment", "digits-canary") not in plan.delete
    plan = step(md, observed(stable="v2", canary=canary_state()), now=at(90))
    assert ("Deployment", "digits-canary") in plan.delete
    status = md["status"]
    assert status["phase"] == "Ready" and status["modelVersion"] == "v2"
    entry = status["history"][0]
    assert entry["version"] == "v2" and entry["outcome"] == "Deployed"
    assert entry["canary"]["canaryValue"] == 0.95 and entry["canary"]["stableValue"] == 0.9


def test_a_worse_canary_is_aborted_removed_and_rejected_with_its_figures(md):
    start_canary(md)
    plan = step(md, observed(canary=canary_state(), live=reading(0.80)), now=at(20))
    assert ("Warning", "CanaryAborted") in events(plan)
    assert ("Deployment", "digits-canary") in plan.delete
    assert deployment_version(plan, "digits") == "v1" and deployment_version(plan, "digits-canary") is None
    status = md["status"]
    assert status["phase"] == "Failed" and status["modelVersion"] == "v1"
    assert status["message"].startswith("v2: canary rejected against v1: accuracy 0.8 vs stable 0.9")
    assert status["message"].endswith("still serving v1")
    entry = status["history"][0]
    assert entry["outcome"] == "Rejected" and entry["message"].startswith("MetricDropped: ")
    assert entry["canary"]["canaryValue"] == 0.8 and entry["canary"]["canaryPairs"] == 500
    assert get_condition(status["conditions"], "Canary")["reason"] == "MetricDropped"
    assert get_condition(status["conditions"], "Ready")["status"] == "True"
    again = step(md, observed(canary=canary_state(), live=reading(0.80)), now=at(30))
    assert ("Deployment", "digits-canary") in again.delete and again.events == []


def test_an_error_prone_canary_is_aborted_on_its_error_rate(md):
    start_canary(md)
    step(md, observed(canary=canary_state(), live=reading(0.95, errors=50)), now=at(20))
    assert md["status"]["history"][0]["outcome"] == "Rejected"
    assert get_condition(md["status"]["conditions"], "Canary")["reason"] == "ErrorRateExceeded"


@pytest.mark.parametrize("request_, reason, outcome", [("promote", "ManualPromote", "Deploying"),
                                                       ("abort", "ManualAbort", "Rejected")])
def test_the_annotation_promotes_or_aborts_and_is_cleared(md, request_, reason, outcome):
    start_canary(md)
    md["metadata"]["annotations"] = {k.ANNOTATION: request_}
    plan = step(md, observed(canary=canary_state(), live=reading(0.95, pairs=3)), now=at(5))
    assert plan.clear_rollout_request == request_
    assert get_condition(md["status"]["conditions"], "Canary")["reason"] == reason
    assert md["status"]["history"][0]["outcome"] == outcome
    assert "RolloutRequestIgnored" not in [e[1] for e in plan.events]


def test_a_request_with_no_canary_to_act_on_is_cleared_with_an_event(md):
    md["metadata"]["annotations"] = {k.ANNOTATION: "promote"}
    plan = step(md, observed())   # v2 is training: nothing to promote
    assert plan.clear_rollout_request == "promote"
    assert ("Normal", "RolloutRequestIgnored") in events(plan)
    assert md["status"]["pipeline"]["stage"] == "compress"


def test_a_request_that_is_neither_is_refused_naming_it_and_the_canary_carries_on(md):
    start_canary(md)
    md["metadata"]["annotations"] = {k.ANNOTATION: "ship-it"}
    plan = step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(5))
    assert plan.clear_rollout_request == "ship-it"
    assert ("Warning", "RolloutRequestIgnored") in events(plan) and md["status"]["phase"] == "Canary"
    assert "'ship-it' is not a rollout request" in next(e[2] for e in plan.events if e[1] == "RolloutRequestIgnored")


def test_a_replanned_pass_mid_canary_changes_nothing_and_says_nothing(md):
    """An operator restart: status and the deterministic name are all there is, and all that is needed."""
    start_canary(md)
    first = step(md, observed(canary=canary_state(), live=reading(0.95, pairs=10)), now=at(10))
    status = md["status"]
    again = step(md, observed(canary=canary_state(), live=reading(0.95, pairs=10)), now=at(10))
    assert again.apply == first.apply and again.delete == [] and again.events == []
    assert md["status"] == status and status["pipeline"]["canaryStartedAt"] == T0


def test_no_decision_in_time_holds_with_one_warning_or_aborts_when_asked(md):
    start_canary(md)
    too_few = reading(0.95, pairs=10)
    plan = step(md, observed(canary=canary_state(), live=too_few), now=at(3600))
    assert ("Warning", "CanaryInconclusive") in events(plan) and md["status"]["phase"] == "Canary"
    assert get_condition(md["status"]["conditions"], "Canary")["status"] == "False"
    plan = step(md, observed(canary=canary_state(), live=too_few), now=at(3660))
    assert plan.events == [] and ("Deployment", "digits-canary") not in plan.delete
    md["spec"]["serving"]["rollout"]["canary"]["onTimeout"] = "Abort"
    plan = step(md, observed(canary=canary_state(), live=too_few), now=at(3700))
    assert md["status"]["history"][0]["outcome"] == "Rejected" and ("Deployment", "digits-canary") in plan.delete
    assert get_condition(md["status"]["conditions"], "Canary")["reason"] == "CanaryTimedOut"


def test_the_readiness_clock_restarts_when_a_canary_pod_stops_being_ready(md):
    start_canary(md)
    step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(10))
    step(md, observed(canary=canary_state(ready=0, rolled=False), live=reading(0.95)), now=at(40))
    assert "canaryReadySince" not in md["status"]["pipeline"]
    step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(50))
    step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(100))
    assert md["status"]["pipeline"]["stage"] == "canary" and "time (50/60 s)" in md["status"]["message"]


def test_a_spec_change_mid_canary_supersedes_it_and_removes_the_canary(md):
    start_canary(md)
    md["spec"]["training"]["hyperparameters"]["epochs"] = 30
    md["metadata"]["generation"] = 3
    plan = step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(10))
    assert ("Deployment", "digits-canary") in plan.delete and md["status"]["latestVersion"] == "v3"
    assert next(h for h in md["status"]["history"] if h["version"] == "v2")["outcome"] == "Superseded"
    assert "canary" not in md["status"] and deployment_version(plan, "digits") == "v1"


def test_switching_to_replace_mid_canary_rolls_the_stable_one_and_retires_the_canary_after(md):
    start_canary(md)
    md["spec"]["serving"]["rollout"]["strategy"] = "Replace"
    plan = step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(10))
    assert deployment_version(plan, "digits") == "v2" and ("Deployment", "digits-canary") not in plan.delete
    plan = step(md, observed(stable="v2", canary=canary_state()), now=at(20))
    assert ("Deployment", "digits-canary") in plan.delete and md["status"]["modelVersion"] == "v2"


def test_a_pin_skips_the_canary():
    md = body()
    serving(md)
    md["spec"]["serving"]["modelVersion"] = "v1"
    md["status"] = {"modelVersion": "v1", "latestVersion": "v2", "history": [{"version": "v1", "servable": "tflite",
                                                                             "outcome": "Deployed"}],
                    "pipeline": {"version": "v2", "attempt": 1, "stage": "compress",
                                 "specHash": parse(md["spec"]).version_hash}}
    plan = step(md, observed(compression_job=finished("compress", accuracy=0.97)))
    assert deployment_version(plan, "digits-canary") is None and md["status"]["pipeline"]["stage"] == "serve"


def test_replace_never_makes_a_canary_or_says_so(md):
    md["spec"]["serving"]["rollout"]["strategy"] = "Replace"
    plan = start_canary(md)
    assert deployment_version(plan, "digits") == "v2" and deployment_version(plan, "digits-canary") is None
    assert md["status"]["pipeline"]["stage"] == "serve" and "canary" not in md["status"]
    assert "canaryStartedAt" not in md["status"]["pipeline"]
    assert get_condition(md["status"]["conditions"], "Canary") is None


def test_between_two_reads_the_canary_is_judged_on_the_last_figures_published(md):
    start_canary(md)
    step(md, observed(canary=canary_state(), live=reading(0.95, pairs=10)), now=at(10))
    figures = md["status"]["canary"]["figures"]
    assert figures["canaryPairs"] == 10 and md["status"]["live"]["versions"]["v2"]["pairs"] == 10
    plan = step(md, observed(canary=canary_state()), now=at(20))          # a pass with no read (not due)
    assert md["status"]["canary"]["figures"] == figures and plan.events == []
    step(md, observed(canary=canary_state()), now=at(80))                 # enough time, but still 10 pairs
    assert md["status"]["canary"]["decision"] == k.WAIT
    plan = step(md, observed(canary=canary_state(), live=reading(0.95)), now=at(90))
    assert ("Normal", "CanaryPromoted") in events(plan)


def test_without_monitoring_no_figures_are_read_and_the_canary_waits_for_a_person(md):
    del md["spec"]["monitoring"]
    start_canary(md)
    step(md, observed(canary=canary_state(), live=reading(0.99)), now=at(600))
    status = md["status"]
    assert status["phase"] == "Canary" and "live" not in status and status["canary"]["figures"] == {}
    assert status["message"].endswith("no live figures are read: decide with kubectl annotate md/digits "
                                      "modelops.io/rollout=promote (or abort)")
