"""Thin kopf handlers: every trigger runs the same idempotent reconcile pass.

The resource itself, its Jobs and its serving Deployment all lead to `Reconciler.reconcile`
for the owning ModelDeployment; a slow timer covers anything a watch might miss.
"""
from __future__ import annotations

import datetime
from typing import Any

import kopf

from . import constants as c
from .cleanup import delete_artifacts

MANAGED = {c.LABEL_MANAGED_BY: c.MANAGED_BY}


@kopf.on.event(c.GROUP, c.VERSION, c.PLURAL, id="reconcile-modeldeployment")
def on_event_modeldeployment(type: str, namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    if type == "DELETED":
        memo.reconciler.metrics.forget(namespace, name)
        return
    memo.reconciler.reconcile(namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED, id="reconcile-owner-of-job")
def on_event_job(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    owner = labels.get(c.LABEL_MODEL)
    if owner:
        memo.reconciler.reconcile(namespace, owner)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED, id="reconcile-owner-of-deployment")
def on_event_deployment(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    owner = labels.get(c.LABEL_MODEL)
    if owner:
        memo.reconciler.reconcile(namespace, owner)


@kopf.timer(c.GROUP, c.VERSION, c.PLURAL, id="resync", interval=60, initial_delay=60, idle=30)
def on_timer_resync(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    memo.reconciler.reconcile(namespace, name)


def _wants_artifacts_deleted(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("storage") or {}).get("deleteOnModelDeletion"))


# Only resources that ask for it get the finalizer; deletion of the others never waits on us.
@kopf.on.delete(c.GROUP, c.VERSION, c.PLURAL, id="delete-artifacts", when=_wants_artifacts_deleted, backoff=5)
def on_delete_modeldeployment(body: kopf.Body, runtime: datetime.timedelta, memo: kopf.Memo,
                              logger: kopf.Logger, **_: Any) -> None:
    delete_artifacts(memo.reconciler, body, out_of_time=runtime.total_seconds() >= memo.cleanup_timeout_s,
                     retry_delay_s=min(5.0, memo.cleanup_timeout_s / 4), logger=logger)
