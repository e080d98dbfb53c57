"""Deleting artifacts with the ModelDeployment: bounded by time, and the finalizer only where asked."""
import datetime as dt
import subprocess
import sys

from modelops_operator import builders as b
from modelops_operator.cleanup import finalizer_patch, plan_cleanup
from modelops_operator.pipeline import JobState
from modelops_operator.spec import parse
from operator_samples import example

OWNER = b.Owner(namespace="ml", name="linear", uid="0123456789")
SPEC = parse(example("linear-regression")["spec"])
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def step(job, seconds=10):
    return plan_cleanup(SPEC, OWNER, b.Images(), job, T0, T0 + dt.timedelta(seconds=seconds), timeout_s=60)


def test_a_new_deletion_creates_the_cleanup_job_and_waits():
    first = step(None)
    assert not first.release and first.create_job["metadata"]["name"] == "linear-cleanup-01234567"
    assert "ownerReferences" not in first.create_job["metadata"]
    assert first.create_job["spec"]["template"]["spec"]["containers"][0]["command"][3:] == [
        "/mnt/pvc/models/ml/linear/0123456789"]
    waiting = step(JobState(active=True))
    assert not waiting.release and waiting.create_job is None


def test_cleanup_deletes_its_own_directory_and_only_its_own_versions_of_the_old_layout():
    status = {"history": [{"version": "v3", "artifactPath": "ml/linear/0123456789/v3"}, {"version": "v2"}]}
    job = plan_cleanup(SPEC, OWNER, b.Images(), None, T0, T0, 60, status).create_job
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][3:] == [
        "/mnt/pvc/models/ml/linear/0123456789", "/mnt/pvc/models/ml/linear/v2"]


def test_the_cleanup_script_fails_when_it_cannot_delete_and_not_when_nothing_is_there(tmp_path):
    """It used to be rmtree(ignore_errors=True): exit 0, files left, ArtifactsDeleted reported."""
    odd = tmp_path / "v1"
    odd.write_text("a file where a version directory should be: rmtree refuses it")
    refused = subprocess.run([sys.executable, "-c", b.CLEANUP_SCRIPT, str(odd)], capture_output=True)
    assert refused.returncode != 0 and odd.exists()
    (tmp_path / "own" / "v1").mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", b.CLEANUP_SCRIPT, str(tmp_path / "absent"), str(tmp_path / "own")])
    assert done.returncode == 0 and not (tmp_path / "own").exists()


def test_a_cleanup_released_on_timeout_is_stopped_so_it_cannot_delete_what_comes_next():
    assert step(JobState(active=True), seconds=60).stop_job
    assert not step(JobState(active=False, failed=True)).stop_job
    assert not step(JobState(active=False, succeeded=True)).stop_job


def test_a_finished_cleanup_releases_with_a_normal_event():
    done = step(JobState(active=False, succeeded=True))
    assert done.release and done.event[:2] == ("Normal", "ArtifactsDeleted")


def test_storage_that_never_answers_releases_after_the_timeout_with_a_warning():
    assert not step(JobState(active=True), seconds=59).release
    late = step(JobState(active=True), seconds=60)
    assert late.release and late.event[:2] == ("Warning", "ArtifactsNotDeleted")
    failed = step(JobState(active=False, failed=True, failure_message="pod exited with code 1"))
    assert failed.release and "pod exited with code 1" in failed.event[2]


def test_finalizer_patches_are_guarded_and_minimal():
    meta = {"resourceVersion": "7", "finalizers": ["other/one"]}
    add = finalizer_patch(meta, "modelops.io/artifacts", True)
    assert add == [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                   {"op": "add", "path": "/metadata/finalizers/-", "value": "modelops.io/artifacts"}]
    assert finalizer_patch({"resourceVersion": "1"}, "f", True)[1] == {
        "op": "add", "path": "/metadata/finalizers", "value": ["f"]}
    meta["finalizers"].append("modelops.io/artifacts")
    assert finalizer_patch(meta, "modelops.io/artifacts", False)[1] == {"op": "remove", "path": "/metadata/finalizers/1"}
    assert finalizer_patch(meta, "modelops.io/artifacts", True) is None
