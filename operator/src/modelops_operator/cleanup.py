"""Deleting a model's artifacts from storage when its ModelDeployment goes, without ever hanging.

Only a resource with `storage.deleteOnModelDeletion` carries the finalizer, so deleting any
other never waits on the operator. Storage is a PVC the operator does not mount, so a short
Job does the deleting; if it has not finished within the timeout (storage unreachable), a
Warning event says what was left behind and the finalizer is released anyway.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

from . import builders as b
from .pipeline import JobState
from .spec import Spec


@dataclass(frozen=True)
class CleanupStep:
    release: bool                              # remove the finalizer now
    event: tuple[str, str, str] | None = None  # (type, reason, message)
    create_job: dict[str, Any] | None = None
    # Released without finishing: a clean-up left running could delete what comes next (a
    # re-created resource of the same name writes to its own directory, but never race it).
    stop_job: bool = False


def plan_cleanup(spec: Spec, owner: b.Owner, images: b.Images, job: JobState | None,
                 deleting_since: dt.datetime, now: dt.datetime, timeout_s: float,
                 status: Mapping[str, Any] | None = None) -> CleanupStep:
    """Pure: what to do for a ModelDeployment being deleted that holds the artifacts finalizer.

    Deletes this resource's own directory, and the versions in its history made before versions
    lived under the resource's uid; never a same-named predecessor's or successor's.
    """
    where = f"{spec.storage_uri}/{b.artifact_path(owner, '').rstrip('/')}"
    if job is not None and job.succeeded:
        return CleanupStep(release=True, event=("Normal", "ArtifactsDeleted", f"deleted {where}"))
    out_of_time = (now - deleting_since).total_seconds() >= timeout_s
    if out_of_time or (job is not None and job.failed):
        why = (job.failure_message if job else None) or f"not finished after {timeout_s:.0f}s"
        return CleanupStep(release=True, event=(
            "Warning", "ArtifactsNotDeleted",
            f"could not delete {where} (cleanup Job {b.cleanup_job_name(owner)}: {why}); "
            "released the finalizer, delete the files by hand"), stop_job=job is not None and not job.failed)
    legacy = [h["version"] for h in (status or {}).get("history") or [] if h.get("version") and not h.get("artifactPath")]
    return CleanupStep(release=False,
                       create_job=b.build_cleanup_job(spec, owner, images, legacy) if job is None else None)


def finalizer_patch(meta: Mapping[str, Any], finalizer: str, present: bool) -> list[dict[str, Any]] | None:
    """A JSON patch adding or removing one finalizer, guarded by resourceVersion; None if nothing to do."""
    current = list(meta.get("finalizers") or [])
    guard = {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}
    if present and finalizer not in current:
        op = ({"op": "add", "path": "/metadata/finalizers/-", "value": finalizer} if current
              else {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]})
        return [guard, op]
    if not present and finalizer in current:
        return [guard, {"op": "remove", "path": f"/metadata/finalizers/{current.index(finalizer)}"}]
    return None
