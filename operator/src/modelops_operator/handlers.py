"""Thin kopf handlers: every trigger runs the same idempotent reconcile pass.

The resource itself, its Jobs and its serving Deployment all lead to `Reconciler.reconcile`
for the owning ModelDeployment. There is deliberately no kopf timer or deletion handler: both
make kopf put its finalizer on every resource, and then no ModelDeployment could be deleted
while the operator is down. The artifacts finalizer is the reconciler's own (see cleanup.py).
"""
from __future__ import annotations

from typing import Any

import kopf

from . import constants as c

MANAGED = {c.LABEL_MANAGED_BY: c.MANAGED_BY}


@kopf.on.event(c.GROUP, c.VERSION, c.PLURAL, id="reconcile-modeldeployment")
def on_event_modeldeployment(type: str, namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    if type == "DELETED":
        memo.reconciler.forget(namespace, name)
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
