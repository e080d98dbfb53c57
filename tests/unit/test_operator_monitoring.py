"""spec.monitoring and the live quality policy: every decision, both threshold directions."""
import pytest

from modelops_contracts.live import LiveFigures
from modelops_operator import monitoring as m
from modelops_operator import spec as specmod
from operator_samples import example

NOW = 1_000_000.0


def settings(**overrides) -> m.Monitoring:
    values = dict(metric="accuracy", threshold_min=0.9, threshold_max=None, min_pairs=100, drift_bound=0.25,
                  cooldown_s=3600, max_retrains_per_window=2, window_s=86400, on_quality_drop="Retrain")
    values.update(overrides)
    return m.Monitoring(**values)


def live(value=0.95, pairs=500, metric="accuracy", drift=None, **kw) -> LiveFigures:
    drift = {"pixel_3": 0.05} if drift is None else drift
    return LiveFigures(version="v1", replica="digits-0", window_seconds=300, metric=metric, value=value,
                       pairs=pairs, requests=pairs * 2, errors=0, latency_p99_ms=4.0, drift=drift,
                       drift_score=max(drift.values()) if drift else None, **kw)


def decide(settings_, figures, retrains=(), busy=None):
    return m.decide(settings_, figures, now=NOW, retrains=list(retrains), busy=busy)


# --- the metric against its threshold, both directions ------------------------------------

@pytest.mark.parametrize("value, action, quality, reason", [
    (0.95, m.NONE, True, "QualityMet"),
    (0.90, m.NONE, True, "QualityMet"),          # on the bound meets it, as at evaluation
    (0.89, m.RETRAIN, False, "QualityDropped"),
])
def test_a_higher_is_better_metric_drops_below_its_minimum(value, action, quality, reason):
    d = decide(settings(), live(value=value))
    assert (d.action, d.quality, d.reason) == (action, quality, reason)
    assert d.figures["value"] == value and d.figures["pairs"] == 500


@pytest.mark.parametrize("value, action, reason", [
    (0.10, m.NONE, "QualityMet"), (0.20, m.NONE, "QualityMet"), (0.21, m.RETRAIN, "QualityDropped")])
def test_a_lower_is_better_metric_drops_above_its_maximum(value, action, reason):
    d = decide(settings(metric="mae", threshold_min=None, threshold_max=0.2), live(value=value, metric="mae"))
    assert (d.action, d.reason) == (action, reason)
    if action == m.RETRAIN:
        assert "mae=0.21 over 500 labeled pairs breaks the threshold <= 0.2" in d.message


# --- minPairs ---------------------------------------------------------------------------

def test_fewer_pairs_than_min_pairs_are_not_judged_however_bad():
    d = decide(settings(), live(value=0.1, pairs=99))
    assert (d.action, d.quality, d.reason) == (m.NONE, None, "TooFewPairs")
    assert "99 labeled pairs of the 100 needed" in d.message


def test_exactly_min_pairs_is_judged():
    assert decide(settings(), live(value=0.1, pairs=100)).action == m.RETRAIN


def test_no_figures_is_unknown_not_a_drop():
    d = decide(settings(), None)
    assert (d.action, d.quality, d.reason) == (m.NONE, None, "NoFigures")


def test_a_window_without_pairs_is_unknown():
    assert decide(settings(), live(value=None, pairs=0)).reason == "TooFewPairs"


# --- drift ------------------------------------------------------------------------------

def test_drift_past_its_bound_retrains_even_with_the_metric_met():
    d = decide(settings(), live(value=0.97, drift={"pixel_3": 0.05, "pixel_9": 0.4}))
    assert (d.action, d.reason) == (m.RETRAIN, "DriftExceeded")
    assert "input drift 0.4 (pixel_9) passes the bound 0.25" in d.message


def test_drift_on_its_bound_is_no_drop():
    assert decide(settings(), live(drift={"pixel_3": 0.25})).reason == "QualityMet"


def test_drift_is_shown_not_acted_on_without_a_bound():
    d = decide(settings(drift_bound=None), live(drift={"pixel_3": 3.0}))
    assert (d.action, d.reason) == (m.NONE, "QualityMet") and "drift 3" in d.message


def test_drift_with_too_few_pairs_alerts_and_never_retrains():
    d = decide(settings(), live(value=None, pairs=3, drift={"pixel_3": 0.9}))
    assert (d.action, d.quality, d.reason) == (m.ALERT, False, "DriftExceeded")
    assert "not retraining: 3 labeled pairs, fewer than minPairs 100" in d.message


def test_a_metric_the_threshold_is_not_about_is_not_judged():
    """The server may report accuracy for an auc model: auc's threshold says nothing about it."""
    d = decide(settings(metric="auc"), live(value=0.1, metric="accuracy"))
    assert (d.action, d.reason) == (m.NONE, "QualityMet")


# --- what holds a retrain back ----------------------------------------------------------------

def test_on_quality_drop_alert_only_alerts():
    d = decide(settings(on_quality_drop="Alert"), live(value=0.5))
    assert (d.action, d.quality, d.reason) == (m.ALERT, False, "QualityDropped")
    assert "monitoring.onQualityDrop is Alert" in d.message


@pytest.mark.parametrize("ago, action", [(3599, m.ALERT), (3600, m.RETRAIN), (10_000, m.RETRAIN)])
def test_cooldown_after_the_last_automatic_retrain(ago, action):
    d = decide(settings(), live(value=0.5), retrains=[NOW - 90_000, NOW - ago])
    assert d.action == action
    if action == m.ALERT:
        assert "cooling down for 1 s more" in d.message


@pytest.mark.parametrize("recent, action", [(1, m.RETRAIN), (2, m.ALERT)])
def test_the_cap_per_window_counts_only_retrains_inside_it(recent, action):
    retrains = [NOW - 86_400 - 10] * 5 + [NOW - 7200 - i for i in range(recent)]   # old ones do not count
    d = decide(settings(), live(value=0.5), retrains=retrains)
    assert d.action == action
    if action == m.ALERT:
        assert "2 automatic retrains in the last 86400 s reach maxRetrainsPerWindow 2" in d.message


def test_no_retrain_while_another_version_is_on_its_way():
    d = decide(settings(), live(value=0.5), busy="v2")
    assert d.action == m.ALERT and "v2 is already on its way" in d.message


# --- spec.monitoring ---------------------------------------------------------------------------

def test_the_live_threshold_defaults_to_the_evaluation_threshold():
    spec = example("digits-classifier")["spec"]
    parsed = specmod.parse(spec)
    assert (m.Monitoring.of(parsed).threshold_min, parsed.threshold_min) == (parsed.threshold_min, parsed.threshold_min)
    spec["monitoring"] = {"enabled": True, "threshold": {"min": 0.5}}
    own = m.Monitoring.of(specmod.parse(spec))
    assert (own.threshold_min, own.threshold_max, own.min_pairs, own.on_quality_drop) == (0.5, None, 200, "Retrain")


@pytest.mark.parametrize("threshold, message", [
    ({"max": 0.3}, "monitoring.threshold.max must be used with a lower-is-better metric"),
    ({"min": 0.3, "max": 0.5}, "exactly one of monitoring.threshold.min and monitoring.threshold.max"),
    ({}, "exactly one of monitoring.threshold.min and monitoring.threshold.max"),
])
def test_a_threshold_against_the_metrics_direction_is_refused_naming_the_field(threshold, message):
    spec = example("digits-classifier")["spec"]
    spec["monitoring"] = {"threshold": threshold}
    with pytest.raises(specmod.SpecError, match=r"spec\.monitoring\.threshold: " + message):
        specmod.parse(spec)


def test_monitoring_settings_make_no_new_version():
    spec = example("digits-classifier")["spec"]
    base = specmod.parse(spec).version_hash
    spec["monitoring"] = {"enabled": True, "minPairs": 50, "driftBound": 0.2, "onQualityDrop": "Alert"}
    assert specmod.parse(spec).version_hash == base


# --- the pipeline: status.live, LiveQuality, and the retrain a drop starts -----------------------

import json  # noqa: E402

from modelops_contracts.report import StageReport  # noqa: E402
from modelops_operator import builders as b  # noqa: E402
from modelops_operator import live as livemod  # noqa: E402
from modelops_operator import pipeline as p  # noqa: E402
from modelops_operator.conditions import get_condition  # noqa: E402
from operator_samples import body  # noqa: E402

T0 = "2026-11-29T12:00:00Z"


def at(minutes: int) -> str:
    return f"2026-11-29T{12 + minutes // 60:02d}:{minutes % 60:02d}:00Z"


def step(md, observed=None, now=T0):
    plan = p.plan(md, specmod.parse(md["spec"]), observed or p.Observed(), b.Images(), now)
    md["status"] = plan.status
    return plan


def done(version, stage):
    return p.JobState(active=False, succeeded=True,
                      report=StageReport(stage=stage, succeeded=True, version=version, metrics={"accuracy": 0.95},
                                         compression={"ratio": 3.8} if stage == "compress" else {}))


def rolled_out(version):
    return p.DeploymentState(version=version, desired=2, replicas=2, ready=2, updated=2, rolled_out=True, available=2)


def serving(version="v1", now=T0, **monitoring):
    """A ModelDeployment whose `version` passed and serves, with spec.monitoring enabled."""
    md = body()
    md["spec"]["monitoring"] = {"enabled": True, "minPairs": 100, "cooldownSeconds": 3600, **monitoring}
    for observed in (None, p.Observed(training_job=done("v1", "train")),
                     p.Observed(compression_job=done("v1", "compress")), p.Observed(deployment=rolled_out("v1"))):
        step(md, observed, now)
    assert md["status"]["modelVersion"] == version and md["status"]["phase"] == "Ready"
    return md


def reading(value, pairs=500, version="v1", now=T0, failures=()):
    figures = [live(value=value, pairs=pairs // 2), live(value=value, pairs=pairs - pairs // 2)]
    figures = [LiveFigures.from_dict({**f.to_dict(), "version": version, "replica": f"digits-{i}"})
               for i, f in enumerate(figures)]
    return p.Observed(deployment=rolled_out(version), live=livemod.Reading(
        at=now, versions=livemod.by_version(figures), failures=tuple(failures)))


def reasons(plan):
    return [e[:2] for e in plan.events]


def test_a_reading_is_published_in_status_live_with_the_condition_and_one_event():
    md = serving()
    plan = step(md, reading(0.95, now=at(1)), at(1))
    live_ = md["status"]["live"]
    assert live_["summary"] == "accuracy=0.95 (500 pairs) drift=0.05"
    assert (live_["version"], live_["pairs"], live_["replicas"], live_["observedAt"]) == ("v1", 500, 2, at(1))
    assert live_["versions"]["v1"]["drift"] == {"pixel_3": 0.05}
    quality = get_condition(md["status"]["conditions"], "LiveQuality")
    assert (quality["status"], quality["reason"]) == ("True", "QualityMet")
    assert reasons(plan) == [("Normal", "QualityMet")]
    assert step(md, reading(0.951, now=at(2)), at(2)).events == []          # no change, no event


def test_a_pass_without_a_reading_keeps_the_last_figures():
    md = serving()
    step(md, reading(0.95), at(1))
    before = md["status"]["live"]
    step(md, p.Observed(deployment=rolled_out("v1")), at(2))
    assert md["status"]["live"] == before


def test_an_unanswering_replica_is_named():
    md = serving()
    step(md, reading(0.95, failures=["digits-2: 503 Service Unavailable"]), at(1))
    assert md["status"]["live"]["unreachable"] == "digits-2: 503 Service Unavailable"
    assert "not answering: digits-2" in get_condition(md["status"]["conditions"], "LiveQuality")["message"]


def test_a_drop_starts_exactly_one_retrain_on_the_feedback():
    md = serving()
    plan = step(md, reading(0.5), at(1))
    status = md["status"]
    assert status["latestVersion"] == "v2" and status["modelVersion"] == "v1"
    assert status["pipeline"]["trigger"] == "QualityDrop" and status["pipeline"]["feedback"] is True
    assert status["phase"] == "Training"
    assert ("Warning", "QualityDropped") in reasons(plan) and ("Normal", "VersionStarted") in reasons(plan)
    v2 = next(h for h in status["history"] if h["version"] == "v2")
    assert (v2["trigger"], v2["triggerReason"]) == ("QualityDrop", "QualityDropped")
    assert v2["figures"] == {"metric": "accuracy", "value": 0.5, "pairs": 500, "minPairs": 100,
                             "threshold": ">= 0.9", "driftScore": 0.05}
    config = next(o for o in plan.apply if o["metadata"]["name"] == "digits-train-v2-a1-config")
    feedback = json.loads(config["data"]["job.json"])["feedback"]
    assert feedback == {"directory": "/mnt/pvc/models/ml/digits/0123456789abcdef/feedback", "maxShare": 0.2,
                        "writtenBefore": 1795953660000}            # at(1), when the drop was decided
    assert "Job/digits-train-v2-a1" in [f"{o['kind']}/{o['metadata']['name']}" for o in plan.create_only]

    again = step(md, reading(0.5, now=at(2)), at(2))             # v2 on its way: an Alert, no v3
    assert md["status"]["latestVersion"] == "v2" and again.events == []
    assert "v2 is already on its way" in get_condition(md["status"]["conditions"], "LiveQuality")["message"]


def test_the_cooldown_holds_the_next_retrain_after_the_new_version_serves():
    md = serving()
    step(md, reading(0.5), at(1))
    for observed in (p.Observed(training_job=done("v2", "train")), p.Observed(compression_job=done("v2", "compress")),
                     p.Observed(deployment=rolled_out("v2"))):
        step(md, observed, at(20))
    assert md["status"]["modelVersion"] == "v2"
    plan = step(md, reading(0.4, version="v2", now=at(30)), at(30))
    assert md["status"]["latestVersion"] == "v2"
    assert ("Warning", "QualityDropped") in reasons(plan)
    assert "cooling down for 1860 s more" in get_condition(md["status"]["conditions"], "LiveQuality")["message"]
    step(md, reading(0.4, version="v2", now=at(62)), at(62))      # past the hour: the next retrain
    assert md["status"]["latestVersion"] == "v3"


def test_alert_only_warns_once_and_records_the_decision():
    md = serving(onQualityDrop="Alert")
    plan = step(md, reading(0.5), at(1))
    assert md["status"]["latestVersion"] == "v1" and reasons(plan) == [("Warning", "QualityDropped")]
    v1 = next(h for h in md["status"]["history"] if h["version"] == "v1")
    assert (v1["liveDecision"]["action"], v1["liveDecision"]["at"]) == ("Alert", at(1))
    assert step(md, reading(0.49, now=at(2)), at(2)).events == []
    assert reasons(step(md, reading(0.95, now=at(3)), at(3))) == [("Normal", "QualityMet")]


def test_turning_monitoring_off_removes_what_it_published():
    md = serving()
    step(md, reading(0.95), at(1))
    md["spec"]["monitoring"]["enabled"] = False
    step(md, p.Observed(deployment=rolled_out("v1")), at(2))
    assert "live" not in md["status"] and get_condition(md["status"]["conditions"], "LiveQuality") is None


def test_with_monitoring_the_servers_keep_feedback_in_the_models_directory():
    spec = example("digits-classifier")["spec"]
    owner = b.Owner(namespace="ml", name="digits", uid="0123456789abcdef")
    plain = b.build_serving_deployment(specmod.parse(spec), owner, b.Images(), "v1", "tflite", owner.uid)
    spec["monitoring"] = {"enabled": True}
    kept = b.build_serving_deployment(specmod.parse(spec), owner, b.Images(), "v1", "tflite", owner.uid)
    pod, plain_pod = kept["spec"]["template"]["spec"], plain["spec"]["template"]["spec"]
    assert plain_pod["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True
    assert "MODELOPS_FEEDBACK_DIR" not in {e["name"] for e in plain_pod["containers"][0]["env"]}
    assert pod["volumes"][0] == {"name": "pvc-0", "persistentVolumeClaim": {"claimName": "models", "readOnly": False}}
    assert all(m["readOnly"] for m in pod["initContainers"][0]["volumeMounts"] if m["name"] == "pvc-0")
    server = pod["containers"][0]
    env = {e["name"]: e.get("value") or e["valueFrom"]["fieldRef"]["fieldPath"] for e in server["env"]}
    assert env["MODELOPS_FEEDBACK_DIR"] == "/var/lib/modelops/feedback"
    assert (env["MODELOPS_REPLICA"], env["MODELOPS_POD_IP"], env["MODELOPS_ID_KEY"]) == (
        "metadata.name", "status.podIP", "0123456789abcdef")
    mount = next(m for m in server["volumeMounts"] if m["name"] == "pvc-0")
    # The directory the trainer of a feedback-trained version reads: one place, both sides.
    assert f"/mnt/pvc/models/{mount['subPath']}" == str(b.build_job_config(
        specmod.parse(spec), owner, "train", "v2", 1, owner.uid, feedback_before_ms=0).feedback.directory)
    assert mount["mountPath"] == "/var/lib/modelops/feedback" and not mount.get("readOnly")


def test_without_monitoring_any_replica_still_forwards_feedback_by_id_to_the_one_that_answered():
    spec = example("digits-classifier")["spec"]
    owner = b.Owner(namespace="ml", name="digits", uid="0123456789abcdef")
    assert not specmod.parse(spec).monitoring_enabled
    for deployment in (b.build_serving_deployment(specmod.parse(spec), owner, b.Images(), "v1", "tflite", owner.uid),
                       b.build_canary_deployment(specmod.parse(spec), owner, b.Images(), "v2", "tflite", owner.uid)):
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["MODELOPS_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["MODELOPS_POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        assert "MODELOPS_ID_KEY" in env and "MODELOPS_FEEDBACK_DIR" not in env
