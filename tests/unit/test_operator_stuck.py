"""Why a stage Job's pods do not start, from pods and events as the API server returns them."""
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
