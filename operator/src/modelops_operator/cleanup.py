"""Deleting a model's artifacts from storage when its ModelDeployment goes, without ever hanging.

Storage is a PVC the operator does not mount, so a short Job does the deleting. The finalizer
waits for it a bounded number of times; if storage never answers, a Warning event says what
was left behind and the finalizer is released anyway.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import kopf

from . import builders as b
from .pipeline import job_state
from .spec import SpecError, parse


def delete_artifacts(reconciler: Any, body: Mapping[str, Any], *, out_of_time: bool, retry_delay_s: float,
                     logger: logging.Logger) -> None:
    meta = body["metadata"]
    owner = b.Owner(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])
    try:
        spec = parse(body.get("spec") or {})
    except SpecError as e:
        reconciler.post_event(body, "Warning", "ArtifactsNotDeleted", f"invalid spec, nothing deleted: {e}")
        return
    kube = reconciler.kube
    job = b.build_cleanup_job(spec, owner, reconciler.images)
    name = job["metadata"]["name"]
    if kube.read("Job", owner.namespace, name) is None:
        kube.create_or_adopt(job)
    state = job_state(kube.read("Job", owner.namespace, name), [])
    where = f"{spec.storage_uri}/{owner.namespace}/{owner.name}"
    if state is not None and state.succeeded:
        reconciler.post_event(body, "Normal", "ArtifactsDeleted", f"deleted {where}")
        return
    if out_of_time or (state is not None and state.failed):
        reconciler.post_event(body, "Warning", "ArtifactsNotDeleted",
                              f"could not delete {where} (cleanup Job {name}: "
                              f"{(state.failure_message if state else None) or 'did not finish'}); "
                              "releasing the finalizer, delete the files by hand")
        logger.warning("artifacts of %s/%s left in storage", owner.namespace, owner.name)
        return
    raise kopf.TemporaryError(f"waiting for cleanup Job {name}", delay=retry_delay_s)
