"""Whose is an object holding one of our names: ours, stale (replace it) or foreign (never touch it)."""
import pytest

from modelops_operator import builders as b
from modelops_operator import pipeline
from modelops_operator.ownership import FOREIGN, OURS, STALE, adoptable, in_the_way, verdict
from modelops_operator.spec import parse
from operator_samples import body as sample_body, example

OWNER = b.Owner(namespace="ml", name="digits", uid="uid-new")
OWNER_OF_BODY = b.Owner(namespace="ml", name="digits", uid="0123456789abcdef")


def obj(refs=(), **labels):
    return {"kind": "Job", "metadata": {"name": "digits-train-v1-a1", "uid": "u-1", "labels": labels,
                                        "ownerReferences": [dict(r) for r in refs]}}


MD_OLD = {"apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment", "name": "digits", "uid": "uid-old"}
MD_NEW = {**MD_OLD, "uid": "uid-new"}
MADE_BY_US = {"app.kubernetes.io/managed-by": "modelops", "modelops.io/model-deployment": "digits"}


@pytest.mark.parametrize("found, spec_hash, expected", [
    (obj([MD_NEW]), None, OURS),
    (obj([MD_NEW], **{"modelops.io/spec-hash": "aaa"}), "aaa", OURS),
    (obj([MD_NEW]), "aaa", OURS),                                              # made before hashes were labels
    (obj([MD_NEW], **{"modelops.io/spec-hash": "aaa"}), "bbb", STALE),          # another spec's Job
    (obj([MD_OLD], **MADE_BY_US), None, STALE),                                 # the predecessor's, being GC'd
    (obj([], **MADE_BY_US), None, STALE),                                       # orphaned by --cascade=orphan
    (obj([], **{**MADE_BY_US, "modelops.io/owner-uid": "uid-new"}), None, OURS),  # the clean-up Job
    (obj([], app="theirs"), None, FOREIGN),                                     # a user's
    (obj([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "d"}], **MADE_BY_US), None, FOREIGN),
    (obj([], **{**MADE_BY_US, "modelops.io/model-deployment": "other"}), None, FOREIGN),
])
def test_verdict(found, spec_hash, expected):
    assert verdict(found, OWNER.uid, OWNER.name, spec_hash) == expected


def test_children_carry_the_owner_uid_and_jobs_the_spec_hash():
    spec = parse(example("digits-classifier")["spec"])
    job = b.build_training_job(spec, OWNER, b.Images(), "v1", 1)
    assert job["metadata"]["labels"]["modelops.io/owner-uid"] == "uid-new"
    assert job["metadata"]["labels"]["modelops.io/spec-hash"] == spec.version_hash
    assert "modelops.io/owner-uid" not in job["spec"]["template"]["metadata"]["labels"]
    deploy = b.build_serving_deployment(spec, OWNER, b.Images(), "v1", "tflite")
    assert "modelops.io/owner-uid" not in deploy["spec"]["template"]["metadata"]["labels"], "no rollout"


def test_a_plan_replaces_a_stale_job_and_keeps_off_a_foreign_service():
    spec = parse(example("digits-classifier")["spec"])
    wanted_job = b.build_training_job(spec, OWNER, b.Images(), "v1", 1)
    wanted_svc = b.build_serving_service(OWNER)
    ways = {
        ("Job", "digits-train-v1-a1"): in_the_way(wanted_job, obj([MD_OLD], **MADE_BY_US), OWNER.uid, OWNER.name),
        ("Service", "digits"): in_the_way(wanted_svc, {"kind": "Service", "metadata": {"name": "digits", "uid": "s"}},
                                          OWNER.uid, OWNER.name),
    }
    out = pipeline.Plan(apply=[wanted_svc], create_only=[wanted_job])
    foreign = pipeline._make_way(out, ways)
    assert out.create_only == [] and out.delete == [("Job", "digits-train-v1-a1")]
    assert out.apply == []
    assert [w.message for w in foreign] == [
        "Service digits exists and is not owned by this ModelDeployment (it has no owner): rename or delete it"]


def test_a_name_conflict_warns_once_while_the_condition_holds():
    md = sample_body()
    svc = {"kind": "Service", "metadata": {"name": "digits", "uid": "s"}}
    status = {"modelVersion": "v1", "history": [{"version": "v1", "servable": "tflite"}]}
    md["status"] = status
    warned = []
    for _ in range(3):
        spec = parse(md["spec"])
        ways = {("Service", "digits"): in_the_way(b.build_serving_service(OWNER_OF_BODY), svc, "0123456789abcdef",
                                                  "digits")}
        state = pipeline.DeploymentState(version="v1", desired=2, replicas=2, ready=2, updated=2, rolled_out=True)
        plan = pipeline.plan(md, spec, pipeline.Observed(deployment=state, in_the_way=ways), b.Images(), "now")
        md["status"] = plan.status
        warned += [e for e in plan.events if e[1] == "NameConflict"]
    assert len(warned) == 1


def test_two_foreign_objects_of_one_condition_warn_once_and_both_are_named():
    md = sample_body()
    md["status"] = {"modelVersion": "v1", "history": [{"version": "v1", "servable": "tflite"}]}
    found = {"Service": {"kind": "Service", "metadata": {"name": "digits", "uid": "s"}},
             "PodDisruptionBudget": {"kind": "PodDisruptionBudget", "metadata": {"name": "digits", "uid": "p"}}}
    ours = {"Service": b.build_serving_service(OWNER_OF_BODY), "PodDisruptionBudget": b.build_pdb(OWNER_OF_BODY)}
    warned = []
    for _ in range(4):
        ways = {(kind, "digits"): in_the_way(ours[kind], found[kind], "0123456789abcdef", "digits") for kind in found}
        state = pipeline.DeploymentState(version="v1", desired=2, replicas=2, ready=2, updated=2, rolled_out=True)
        plan = pipeline.plan(md, parse(md["spec"]), pipeline.Observed(deployment=state, in_the_way=ways), b.Images(),
                             "now")
        md["status"] = plan.status
        warned += [e for e in plan.events if e[1] == "NameConflict"]
    assert len(warned) == 1
    deployed = next(c for c in md["status"]["conditions"] if c["type"] == "Deployed")
    assert "Service digits" in deployed["message"] and "PodDisruptionBudget digits" in deployed["message"]


def test_an_owner_less_cleanup_job_is_adopted_by_its_resources_uid_never_by_its_name():
    wanted = b.build_cleanup_job(parse(example("digits-classifier")["spec"]), OWNER, b.Images())
    assert not wanted["metadata"].get("ownerReferences")
    def found(uid):
        return {"kind": "Job", "metadata": {"name": wanted["metadata"]["name"],
                                            "labels": {**wanted["metadata"]["labels"], "modelops.io/owner-uid": uid}}}
    assert adoptable(found("uid-new"), wanted)
    assert not adoptable(found("uid-old"), wanted)   # the same name labels: a predecessor's clean-up
    assert adoptable(obj([MD_NEW]), wanted) and not adoptable(obj([MD_OLD]), wanted)


def test_a_foreign_config_map_with_a_stage_jobs_config_name_holds_the_job_back():
    """The Job would mount someone else's ConfigMap as its job config: it is not created beside it."""
    md = sample_body()
    spec = parse(md["spec"])
    first = pipeline.plan(md, spec, pipeline.Observed(), b.Images(), "now")
    config = next(o for o in first.apply if o["kind"] == "ConfigMap")
    users = {"kind": "ConfigMap", "metadata": {"name": config["metadata"]["name"], "uid": "c"}}
    ways = {("ConfigMap", users["metadata"]["name"]): in_the_way(config, users, "0123456789abcdef", "digits")}
    plan = pipeline.plan(md, spec, pipeline.Observed(in_the_way=ways), b.Images(), "now")
    assert plan.create_only == [] and all(o["kind"] != "ConfigMap" for o in plan.apply)
    trained = next(c for c in plan.status["conditions"] if c["type"] == "Trained")
    assert trained["reason"] == "NameConflict" and users["metadata"]["name"] in trained["message"]


def test_a_foreign_autoscaler_with_the_serving_name_is_never_applied_to():
    md = sample_body()
    md["spec"]["serving"]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 70}
    md["spec"]["serving"]["resources"] = {"requests": {"cpu": "250m"}}
    md["status"] = {"modelVersion": "v1", "history": [{"version": "v1", "servable": "tflite"}]}
    spec = parse(md["spec"])
    hpa = b.build_hpa(spec, OWNER_OF_BODY)
    users = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": hpa["metadata"]["name"], "uid": "h"}}
    ways = {("HorizontalPodAutoscaler", hpa["metadata"]["name"]): in_the_way(hpa, users, "0123456789abcdef", "digits")}
    state = pipeline.DeploymentState(version="v1", desired=2, replicas=2, ready=2, updated=2, rolled_out=True)
    plan = pipeline.plan(md, spec, pipeline.Observed(deployment=state, in_the_way=ways), b.Images(), "now")
    assert all(o["kind"] != "HorizontalPodAutoscaler" for o in plan.apply)
    assert ("HorizontalPodAutoscaler", hpa["metadata"]["name"]) not in plan.delete
    deployed = next(c for c in plan.status["conditions"] if c["type"] == "Deployed")
    assert deployed["reason"] == "NameConflict" and "HorizontalPodAutoscaler" in deployed["message"]
