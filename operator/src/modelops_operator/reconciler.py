"""One reconcile pass: read the resource and its children, plan, carry the plan out.

Level-triggered and idempotent: any event (the resource, one of its Jobs, its Deployment, a
requeue) runs the same pass, serialised per resource, so a missed or repeated event is harmless.
A pass that fails is retried with exponential backoff: kopf never retries event handlers, and the
refusal that failed it (a quota, a missing permission) may be fixed without touching the resource.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Mapping

from kubernetes.client.exceptions import ApiException

from . import builders as b
from . import claims
from . import constants as c
from . import pipeline, stuck
from .cleanup import finalizer_patch, plan_cleanup
from .kube import ConflictError, Kube
from .metrics import Metrics
from .spec import Spec, SpecError, parse

log = logging.getLogger(__name__)
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 300.0


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Reconciler:
    def __init__(self, kube: Kube, images: b.Images, metrics: Metrics, clock: Callable[[], str] = utcnow,
                 cleanup_timeout_s: float = 300.0):
        self.kube = kube
        self.images = images
        self.metrics = metrics
        self.clock = clock
        self.cleanup_timeout_s = cleanup_timeout_s
        self._locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._failures: dict[tuple[str, str], int] = {}
        self._rechecks: set[tuple[str, str]] = set()   # resources with a pending recheck timer (at most one each)

    def requeue(self, namespace: str, name: str, delay_s: float) -> None:
        """Reconcile again after a delay, for waits no watch event will end (a stuck clean-up)."""
        timer = threading.Timer(delay_s, self._requeued, args=(namespace, name))
        timer.daemon = True
        timer.start()

    def _requeued(self, namespace: str, name: str) -> None:
        try:
            self.reconcile(namespace, name)
        except Exception:  # a timer thread has nobody to raise to; the next event retries
            log.exception("requeued reconcile of %s/%s failed", namespace, name)

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[(namespace, name)]

    def reconcile(self, namespace: str, name: str) -> None:
        started = time.monotonic()
        result = "ok"
        key = (namespace, name)
        try:
            with self._lock(namespace, name):
                self._reconcile(namespace, name)
            self._failures.pop(key, None)
        except ApiException as e:
            # 409: the resource moved on while we planned; the event that moved it reconciles again.
            result = "conflict" if e.status == 409 else "error"
            if e.status != 409:
                self._retry_later(key)
                raise
        except Exception:
            result = "error"
            self._retry_later(key)
            raise
        finally:
            self.metrics.reconciled(result, time.monotonic() - started)

    def _retry_later(self, key: tuple[str, str]) -> None:
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        self.requeue(*key, min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (failures - 1)))

    def _reconcile(self, namespace: str, name: str) -> None:
        body = self.kube.read(c.KIND, namespace, name)
        if body is None:
            self.metrics.forget(namespace, name)
            return
        try:
            self._reconcile_body(body)
        except ApiException as e:
            if e.status != 409:
                # Say why in the resource's events (a quota, a missing permission); the pass is retried.
                self.post_event(body, "Warning", "ReconcileFailed", f"{e.status} {e.reason}: {_api_message(e)}")
            raise

    def _reconcile_body(self, body: dict[str, Any]) -> None:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        now = self.clock()
        try:
            spec = parse(body.get("spec") or {})
        except SpecError as e:
            if not body["metadata"].get("deletionTimestamp"):
                self._write_invalid(body, str(e), now)
            self._set_finalizer(body, False)
            return
        owner = b.Owner(namespace=namespace, name=name, uid=body["metadata"]["uid"])
        if body["metadata"].get("deletionTimestamp"):
            self.metrics.forget(namespace, name)
            if c.FINALIZER in (body["metadata"].get("finalizers") or []):
                self._finalize(body, spec, owner)
            return
        self._set_finalizer(body, spec.delete_artifacts)
        run, _ = pipeline.current_run(body.get("status") or {}, spec, now, owner)
        observed = self._observe(owner, run)
        plan = pipeline.plan(body, spec, observed, self.images, now)
        found = {n: self.kube.read("PersistentVolumeClaim", namespace, n) for n in claims.claim_names(spec)}
        plan.events += claims.record(plan.status, claims.judge(spec, namespace, found),
                                     body["metadata"].get("generation", 1), now)
        for kind, child in plan.delete:
            self.kube.delete(kind, namespace, child)
        for obj in plan.apply:
            self.kube.apply(obj)
        for obj in plan.create_only:
            try:
                self.kube.create_or_adopt(obj)
            except ConflictError as e:
                plan.events.append(("Warning", "NameConflict", str(e)))
        if plan.status != (body.get("status") or {}):
            self.kube.replace_status(body, plan.status)
        for kind, reason, message in plan.events:
            self.post_event(body, kind, reason, message)
        if plan.recheck_after_s:
            self._recheck(namespace, name, plan.recheck_after_s)
        self.metrics.observe_phase(namespace, name, plan.status.get("phase", "Pending"))

    def _recheck(self, namespace: str, name: str, delay_s: float) -> None:
        """Reconcile again after a delay, unless a recheck of this resource is already pending."""
        key = (namespace, name)
        with self._locks_guard:
            if key in self._rechecks:
                return
            self._rechecks.add(key)

        def run() -> None:
            with self._locks_guard:
                self._rechecks.discard(key)
            self._requeued(namespace, name)
        timer = threading.Timer(delay_s, run)
        timer.daemon = True
        timer.start()

    def _set_finalizer(self, body: Mapping[str, Any], present: bool) -> None:
        patch = finalizer_patch(body["metadata"], c.FINALIZER, present)
        if patch:
            meta = body["metadata"]
            body["metadata"].update(self.kube.json_patch(c.KIND, meta["namespace"], meta["name"], patch)["metadata"])

    def _finalize(self, body: dict[str, Any], spec: Spec, owner: b.Owner) -> None:
        meta = body["metadata"]
        name = b.cleanup_job_name(owner)
        step = plan_cleanup(spec, owner, self.images, self._job(owner.namespace, name),
                            _parse_time(meta["deletionTimestamp"]), _parse_time(utcnow()), self.cleanup_timeout_s)
        if step.create_job:
            self.kube.create_or_adopt(step.create_job)
        if step.event:
            self.post_event(body, *step.event)
        if step.release:
            self._set_finalizer(body, False)
        else:
            self.requeue(owner.namespace, owner.name, min(5.0, self.cleanup_timeout_s / 4))

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
        state = pipeline.job_state(job, [])
        # Running, or suspended until Kueue admits it: its pods have nothing to say yet.
        if state.active and (state.suspended or not stuck.starting(job)):
            return state
        pods = self.kube.list("Pod", namespace, f"batch.kubernetes.io/job-name={name}")
        if not state.active:   # finished: the pods' termination messages carry the outcome
            return pipeline.job_state(job, pods)
        # Starting: say why it is not running, when Kubernetes knows (pods are not watched, so check again soon).
        # The Job's own events explain pods it could not create (all of them, or one worker of several).
        job_events = self.kube.warning_events(namespace, "Job", name)
        events = job_events if stuck.pods_missing(job, pods) else []
        for pod in stuck.pods_to_ask_about(pods)[:1]:
            events += self.kube.warning_events(namespace, "Pod", pod)
        return dataclasses.replace(state, starting=True, stuck=stuck.diagnose(pods, events))

    def _write_invalid(self, body: Mapping[str, Any], message: str, now: str) -> None:
        status = dict(body.get("status") or {})
        if status.get("phase") == "Failed" and status.get("message") == message:
            return
        status.update(phase="Failed", message=message, observedGeneration=body["metadata"].get("generation", 1))
        self.kube.replace_status(body, status)
        self.post_event(body, "Warning", "InvalidSpec", message)

    def post_event(self, body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        meta = body["metadata"]
        now = utcnow()
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


def _parse_time(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
