"""Why a stage Job's pods do not start, from pods and events as the API server returns them."""
from modelops_contracts.report import StageReport
from modelops_operator import builders as b
from modelops_operator import pipeline as p
from modelops_operator import stuck
from modelops_operator.conditions import get_condition
from modelops_operator.spec import parse
from operator_samples import body


def pod(name="digits-train-v1-a1-x", phase="Pending", conditions=(), containers=(), init=()):
    return {"metadata": {"name": name},
            "status": {"phase": phase, "conditions": list(conditions), "containerStatuses": list(containers),
                       "initContainerStatuses": list(init)}}


def waiting(reason, message="", name="train"):
    return {"name": name, "state": {"waiting": {"reason": reason, "message": message}}}


SCHEDULED = {"type": "PodScheduled", "status": "True"}


def test_a_pull_that_fails_is_named_with_the_container_and_kubernetes_words():
    found = stuck.diagnose([pod(conditions=[SCHEDULED],
                                containers=[waiting("ImagePullBackOff", 'Back-off pulling image "nope:1"')])], [])
    assert found == stuck.Stuck("ImagePullBackOff", 'pod digits-train-v1-a1-x: container train: ImagePullBackOff: '
                                                    'Back-off pulling image "nope:1"')


def test_progress_is_not_trouble():
    creating = pod(conditions=[SCHEDULED], containers=[waiting("ContainerCreating")])
    assert stuck.diagnose([creating], []) is None
    assert stuck.pods_to_ask_about([creating]) == ["digits-train-v1-a1-x"]
    assert stuck.pods_to_ask_about([pod(phase="Running", conditions=[SCHEDULED])]) == []


def test_an_unschedulable_pod_says_what_the_scheduler_said():
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}
    found = stuck.diagnose([pod(conditions=[unschedulable])], [])
    assert found.reason == "Unschedulable" and "didn't match Pod's node affinity/selector" in found.message
    assert stuck.pods_to_ask_about([pod(conditions=[unschedulable])]) == []   # its status already says why


def test_the_newest_warning_event_explains_a_job_without_pods():
    events = [{"type": "Warning", "reason": "FailedCreate", "lastTimestamp": "2026-12-01T10:00:00Z",
               "involvedObject": {"kind": "Job", "name": "digits-train-v1-a1"}, "message": "old"},
              {"type": "Warning", "reason": "FailedCreate", "lastTimestamp": "2026-12-01T10:05:00Z",
               "involvedObject": {"kind": "Job", "name": "digits-train-v1-a1"},
               "message": 'pods "x" is forbidden: failed quota: q: must specify limits.cpu for: train'},
              {"type": "Normal", "reason": "SuccessfulCreate", "lastTimestamp": "2026-12-01T10:06:00Z"}]
    found = stuck.diagnose([], events)
    assert found.reason == "FailedCreate" and found.message.startswith("Job digits-train-v1-a1: pods")
    assert "must specify limits.cpu" in found.message


def test_a_job_starts_until_every_pod_it_runs_is_ready():
    assert stuck.starting({"spec": {"parallelism": 2}, "status": {"ready": 1}})
    assert not stuck.starting({"spec": {"parallelism": 2}, "status": {"ready": 1, "succeeded": 1}})


def test_a_stuck_job_is_in_the_message_a_condition_and_one_event_and_clears_when_it_starts():
    md = body()
    plan_ = p.plan(md, parse(md["spec"]), p.Observed(), b.Images(), "2026-12-01T10:00:00Z")
    md["status"] = plan_.status
    trouble = stuck.Stuck("ImagePullBackOff", "pod x: container train: ImagePullBackOff: no such image")
    job = p.JobState(active=True, starting=True, stuck=trouble)
    for round_ in range(2):
        plan_ = p.plan(md, parse(md["spec"]), p.Observed(training_job=job), b.Images(), "2026-12-01T10:00:00Z")
        md["status"] = plan_.status
        warnings = [e for e in plan_.events if e[1] == "ImagePullBackOff"]
        assert len(warnings) == (1 if round_ == 0 else 0), plan_.events    # once per new reason, not every pass
        assert plan_.recheck_after_s == p.RECHECK_STARTING_S
    assert md["status"]["phase"] == "Training" and "no such image" in md["status"]["message"]
    assert get_condition(md["status"]["conditions"], "Trained")["reason"] == "ImagePullBackOff"

    running = p.JobState(active=True)
    plan_ = p.plan(md, parse(md["spec"]), p.Observed(training_job=running), b.Images(), "2026-12-01T10:00:00Z")
    assert plan_.recheck_after_s is None and "no such image" not in plan_.status["message"]
    assert get_condition(plan_.status["conditions"], "Trained")["reason"] == "Training"


def test_a_job_is_missing_pods_when_fewer_live_ones_exist_than_it_runs_at_once():
    job = {"spec": {"parallelism": 2}}
    assert stuck.pods_missing(job, [pod(phase="Running")])                      # one worker refused
    assert stuck.pods_missing(job, [pod(phase="Running"), pod(phase="Failed")])
    assert not stuck.pods_missing(job, [pod(phase="Running"), pod(phase="Pending")])


def test_a_deployment_whose_replica_set_cannot_create_pods_says_why():
    refused = {"metadata": {"name": "digits"}, "status": {"conditions": [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
         "message": 'pods "digits-7c9-x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1'}]}}
    found = stuck.replica_failure(refused)
    assert found.reason == "FailedCreate" and found.message.startswith("Deployment digits: pods")
    assert stuck.replica_failure({"metadata": {"name": "digits"}, "status": {"conditions": [
        {"type": "ReplicaFailure", "status": "False"}]}}) is None


def test_a_serving_pod_that_does_not_start_is_in_the_message_a_condition_and_one_event():
    """Seen on the real node: a serving image that could not be pulled left 'rolling out v1' and nothing else."""
    md = body()
    plan_ = p.plan(md, parse(md["spec"]), p.Observed(), b.Images(), "2026-12-01T10:00:00Z")
    for observed in (p.Observed(training_job=p.JobState(active=False, succeeded=True, report=_report("train"))),
                     p.Observed(compression_job=p.JobState(active=False, succeeded=True, report=_report("compress")))):
        md["status"] = plan_.status
        plan_ = p.plan(md, parse(md["spec"]), observed, b.Images(), "2026-12-01T10:00:00Z")
    md["status"] = plan_.status
    trouble = stuck.Stuck("ImagePullBackOff", "pod digits-1: container serve: ImagePullBackOff: not found")
    rolling = p.DeploymentState(version="v1", desired=2, replicas=2, ready=0, updated=2, rolled_out=False, stuck=trouble)
    for round_ in range(2):
        plan_ = p.plan(md, parse(md["spec"]), p.Observed(deployment=rolling), b.Images(), "2026-12-01T10:00:00Z")
        md["status"] = plan_.status
        warnings = [e for e in plan_.events if e[1] == "ImagePullBackOff"]
        assert len(warnings) == (1 if round_ == 0 else 0), plan_.events
        assert plan_.recheck_after_s == p.RECHECK_STARTING_S   # pods are not watched: look again
    assert md["status"]["phase"] == "Deploying" and "not running: pod digits-1" in md["status"]["message"]
    assert get_condition(md["status"]["conditions"], "Deployed")["reason"] == "ImagePullBackOff"
    assert "ImagePullBackOff" in get_condition(md["status"]["conditions"], "Ready")["message"]


def _report(stage):
    return StageReport(stage=stage, succeeded=True, version="v1", metric="accuracy", metrics={"accuracy": 0.95})
