"""One reconcile pass: read the resource and its children, plan, carry the plan out.

Level-triggered and idempotent: any event (the resource, one of its Jobs, its Deployment, a
timer) runs the same pass, serialised per resource, so a missed or repeated event is harmless.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Mapping

from kubernetes.client.exceptions import ApiException

from . import builders as b
from . import constants as c
from . import pipeline
from .kube import ConflictError, Kube
from .metrics import Metrics
from .spec import SpecError, parse

log = logging.getLogger(__name__)


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Reconciler:
    def __init__(self, kube: Kube, images: b.Images, metrics: Metrics, clock: Callable[[], str] = utcnow):
        self.kube = kube
        self.images = images
        self.metrics = metrics
        self.clock = clock
        self._locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[(namespace, name)]

    def reconcile(self, namespace: str, name: str) -> None:
        started = time.monotonic()
        result = "ok"
        try:
            with self._lock(namespace, name):
                self._reconcile(namespace, name)
        except ApiException as e:
            # 409: the resource moved on while we planned; the event that moved it reconciles again.
            result = "conflict" if e.status == 409 else "error"
            if e.status != 409:
                raise
        except Exception:
            result = "error"
            raise
        finally:
            self.metrics.reconciled(result, time.monotonic() - started)

    def _reconcile(self, namespace: str, name: str) -> None:
        body = self.kube.read(c.KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.metrics.forget(namespace, name)
            return
        now = self.clock()
        try:
            spec = parse(body.get("spec") or {})
        except SpecError as e:
            self._write_invalid(body, str(e), now)
            return
        owner = b.Owner(namespace=namespace, name=name, uid=body["metadata"]["uid"])
        run, _ = pipeline.current_run(body.get("status") or {}, spec, now, owner)
        observed = self._observe(owner, run)
        plan = pipeline.plan(body, spec, observed, self.images, now)
        try:
            for kind, child in plan.delete:
                self.kube.delete(kind, namespace, child)
            for obj in plan.apply:
                self.kube.apply(obj)
            for obj in plan.create_only:
                try:
                    self.kube.create_or_adopt(obj)
                except ConflictError as e:
                    plan.events.append(("Warning", "NameConflict", str(e)))
        except ApiException as e:
            # Say why in the resource's events (e.g. a quota or RBAC refusal); the next pass retries.
            self.post_event(body, "Warning", "ApplyFailed", f"{e.status} {e.reason}: {_api_message(e)}")
            raise
        if plan.status != (body.get("status") or {}):
            self.kube.replace_status(body, plan.status)
        for kind, reason, message in plan.events:
            self.post_event(body, kind, reason, message)
        self.metrics.observe_phase(namespace, name, plan.status.get("phase", "Pending"))

    def _observe(self, owner: b.Owner, run: Mapping[str, Any]) -> pipeline.Observed:
        observed = pipeline.Observed()
        if run["stage"] == "train":
            observed.training_job = self._job(owner.namespace, b.training_job_name(owner, run["version"], run["attempt"]))
        elif run["stage"] == "compress":
            observed.compression_job = self._job(owner.namespace, b.compression_job_name(owner, run["version"]))
        observed.deployment = pipeline.deployment_state(
            self.kube.read("Deployment", owner.namespace, b.serving_name(owner)))
        return observed

    def _job(self, namespace: str, name: str) -> pipeline.JobState | None:
        job = self.kube.read("Job", namespace, name)
        if job is None:
            return None
        pods = self.kube.list("Pod", namespace, f"batch.kubernetes.io/job-name={name}")
        return pipeline.job_state(job, pods)

    def _write_invalid(self, body: Mapping[str, Any], message: str, now: str) -> None:
        status = dict(body.get("status") or {})
        if status.get("phase") == "Failed" and status.get("message") == message:
            return
        status.update(phase="Failed", message=message, observedGeneration=body["metadata"].get("generation", 1))
        self.kube.replace_status(body, status)
        self.post_event(body, "Warning", "InvalidSpec", message)

    def post_event(self, body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        meta = body["metadata"]
        now = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"],
                               "resourceVersion": meta.get("resourceVersion")},
            "type": kind, "reason": reason, "message": message[:1024],
            "source": {"component": c.FIELD_MANAGER}, "reportingComponent": c.FIELD_MANAGER,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            self.kube.create_event(meta["namespace"], event)
        except ApiException as e:  # an event is worth a log line, never a failed reconcile
            log.warning("could not post event %s for %s/%s: %s", reason, meta["namespace"], meta["name"], e.reason)


def _api_message(error: ApiException) -> str:
    try:
        return json.loads(error.body).get("message", "")[:500]
    except (TypeError, ValueError):
        return ""
