"""Jobs that cannot hang: queued for Kueue, a start-up barrier for multi-worker, a deadline named as the cause."""
from modelops_contracts.report import StageReport, encode
from modelops_operator import builders as b
from modelops_operator import pipeline as p
from modelops_operator.conditions import get_condition
from modelops_operator.spec import parse
from operator_samples import ROOT, body, example

OWNER = b.Owner(namespace="ml", name="digits", uid="uid-1")
NOW = "2026-11-29T12:00:00Z"


def env_of(job):
    return {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_a_queued_model_creates_suspended_jobs_labelled_for_kueue():
    raw = example("diabetes-multiworker")["spec"]
    raw["training"]["queueName"] = "gpu-team"
    spec = parse(raw)
    for job in (b.build_training_job(spec, OWNER, b.Images(), "v1", 1), b.build_compression_job(spec, OWNER, b.Images(), "v1")):
        assert job["spec"]["suspend"] is True
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team"
    plain = b.build_training_job(parse(example("diabetes-multiworker")["spec"]), OWNER, b.Images(), "v1", 1)
    assert "suspend" not in plain["spec"] and "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]


def test_multi_worker_pods_get_a_start_up_timeout():
    raw = example("diabetes-multiworker")["spec"]
    assert env_of(b.build_training_job(parse(raw), OWNER, b.Images(), "v1", 1))["MODELOPS_STARTUP_TIMEOUT_S"] == "600"
    raw["training"]["startupTimeoutSeconds"] = 120
    assert env_of(b.build_training_job(parse(raw), OWNER, b.Images(), "v1", 1))["MODELOPS_STARTUP_TIMEOUT_S"] == "120"
    single = b.build_training_job(parse(example("digits-classifier")["spec"]), OWNER, b.Images(), "v1", 1)
    assert "MODELOPS_STARTUP_TIMEOUT_S" not in env_of(single)


def test_a_suspended_job_says_it_waits_for_admission():
    md = body()
    md["spec"]["training"]["queueName"] = "gpu-team"
    state = p.job_state({"spec": {"suspend": True}, "status": {"conditions": [
        {"type": "Suspended", "status": "True", "reason": "JobSuspended"}]}}, [])
    plan = p.plan(md, parse(md["spec"]), p.Observed(training_job=state), b.Images(), NOW)
    assert plan.status["phase"] == "Training"
    assert plan.status["message"].endswith("; suspended until admitted by queue gpu-team")


def test_the_install_guide_gives_the_default_deadlines():
    """Whoever sizes a long training run on a real cluster reads the defaults there, not in builders.py."""
    guide = " ".join((ROOT / "docs" / "install.md").read_text().split())
    assert f"default {b.DEFAULT_TRAINING_DEADLINE_S // 3600} h" in guide
    assert f"compression Jobs {b.DEFAULT_COMPRESSION_DEADLINE_S // 3600} h" in guide


def test_a_deadline_is_the_reason_not_the_killed_pods_last_words():
    killed = {"metadata": {"name": "digits-train-v1-a1-x"}, "status": {"phase": "Failed", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 143, "reason": "Error", "message": encode(StageReport(
            stage="train", succeeded=False, version="v1", reason="Terminated", message="SIGTERM"))}}}]}}
    job = {"spec": {"activeDeadlineSeconds": 600}, "status": {"conditions": [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
         "message": "Job was active longer than specified deadline"}]}}
    state = p.job_state(job, [killed])
    assert state.failure_reason == "DeadlineExceeded" and state.report is None
    assert state.failure_message == "Job was active longer than specified deadline (activeDeadlineSeconds 600)"
    md = body()
    p.plan(md, parse(md["spec"]), p.Observed(), b.Images(), NOW)
    plan = p.plan(md, parse(md["spec"]), p.Observed(training_job=state), b.Images(), NOW)
    assert get_condition(plan.status["conditions"], "Evaluated")["reason"] == "DeadlineExceeded"
