"""One reconcile pass: read the resource and its children, plan, carry the plan out.

Level-triggered and idempotent: any event (the resource, one of its Jobs, its Deployment, a
requeue) runs the same pass, serialised per resource, so a missed or repeated event is harmless.
A pass that fails is retried with exponential backoff: kopf never retries event handlers, and the
refusal that failed it (a quota, a missing permission) may be fixed without touching the resource.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from typing import Any, Callable, Iterator, Mapping

from kubernetes.client.exceptions import ApiException

from . import builders as b
from . import canary, claims
from . import constants as c
from . import imagepolicy, live, pipeline
from .cleanup import finalizer_patch, plan_cleanup
from .children import Children
from .conditions import set_condition
from .kube import Kube, api_message
from .metrics import Metrics
from .requeue import Requeues
from .spec import Spec, SpecError, parse

log = logging.getLogger(__name__)


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
        self.requeues = Requeues(self._requeued)
        # Per-resource locks, counted so that the map holds only resources being reconciled now.
        self._locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}
        self._locks_guard = threading.Lock()
        self._last_failure: dict[tuple[str, str], str] = {}

    def requeue(self, namespace: str, name: str, delay_s: float) -> None:
        """Reconcile again after a delay, for waits no watch event will end (a stuck clean-up)."""
        self.requeues.after((namespace, name), delay_s)

    def forget(self, namespace: str, name: str) -> None:
        """The resource is gone: drop what the operator keeps about it in memory."""
        self.metrics.forget(namespace, name)
        self.requeues.forget((namespace, name))
        self._last_failure.pop((namespace, name), None)

    def _requeued(self, namespace: str, name: str) -> None:
        try:
            self.reconcile(namespace, name)
        except Exception:  # a timer thread has nobody to raise to; the next event retries
            log.exception("requeued reconcile of %s/%s failed", namespace, name)

    @contextlib.contextmanager
    def _locked(self, key: tuple[str, str]) -> Iterator[None]:
        with self._locks_guard:
            lock, users = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._locks_guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def reconcile(self, namespace: str, name: str) -> None:
        started = time.monotonic()
        result = "ok"
        key = (namespace, name)
        try:
            with self._locked(key):
                self._reconcile(namespace, name)
            self.requeues.succeeded(key)
            self._last_failure.pop(key, None)
        except ApiException as e:
            # 409: the resource moved on while we planned; the event that moved it reconciles again.
            result = "conflict" if e.status == 409 else "error"
            if e.status != 409:
                self.requeues.failed(key)
                raise
        except Exception:
            result = "error"
            self.requeues.failed(key)
            raise
        finally:
            self.metrics.reconciled(result, time.monotonic() - started)

    def _reconcile(self, namespace: str, name: str) -> None:
        body = self.kube.read(c.KIND, namespace, name)
        if body is None:
            self.forget(namespace, name)
            return
        try:
            self._reconcile_body(body)
        except ApiException as e:
            if e.status != 409:
                # Say why in the resource's events (a quota, a missing permission), once per cause:
                # every retry and watch event fails the same way until someone fixes it.
                why = f"{e.status} {e.reason}: {api_message(e)}"
                if self._last_failure.get((namespace, name)) != why:
                    self._last_failure[(namespace, name)] = why
                    self.post_event(body, "Warning", "ReconcileFailed", why)
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
        refused = imagepolicy.refusal(spec, self.images.allowed_images)
        if refused:   # after the deletion branch: a resource refused now may still have versions to clean up
            self._write_invalid(body, refused, now, imagepolicy.REASON)
            return
        self._set_finalizer(body, spec.delete_artifacts)
        run, _ = pipeline.current_run(body.get("status") or {}, spec, now, owner, self.images)
        children = Children(self.kube, owner)
        observed = self._observe(children, run)
        observed.live = self._read_live(body, spec, owner, now)
        plan = pipeline.plan(body, spec, observed, self.images, now)
        observed.in_the_way = children.in_the_way(plan.apply + plan.create_only)
        if observed.in_the_way:   # plan again, kept off names others hold
            plan = pipeline.plan(body, spec, observed, self.images, now)
        found = {n: children.read("PersistentVolumeClaim", n) for n in claims.claim_names(spec)}
        plan.events += claims.record(plan.status, claims.judge(spec, namespace, found),
                                     body["metadata"].get("generation", 1), now)
        # Status first: a pass that loses the race to a newer spec (409) creates nothing, so no Job is
        # made for a version status does not record, and the next pass never adopts one for another spec.
        if plan.status != (body.get("status") or {}):
            self.kube.replace_status(body, plan.status)
        self.metrics.observe_phase(namespace, name, plan.status.get("phase", "Pending"))
        for kind, reason, message in plan.events + children.carry_out(plan):
            self.post_event(body, kind, reason, message)
        if plan.recheck_after_s:   # pods are not watched: look again while a stage Job's pods start
            self.requeue(namespace, name, plan.recheck_after_s)
        if spec.monitoring_enabled and plan.status.get("modelVersion"):   # the next read of live figures
            self.requeue(namespace, name, live.due(plan.status, spec.monitoring_period_s, now)
                         or spec.monitoring_period_s)
        if plan.clear_rollout_request is not None:   # last: the status already says what the request did
            self.kube.json_patch(c.KIND, namespace, name, canary.json_patch_clearing(plan.clear_rollout_request))

    def _read_live(self, body: Mapping[str, Any], spec: Spec, owner: b.Owner, now: str) -> live.Reading | None:
        """The serving replicas' live figures, once per monitoring period (None: not due, or nothing serves)."""
        status = body.get("status") or {}
        if (not spec.monitoring_enabled or not status.get("modelVersion")
                or live.due(status, spec.monitoring_period_s, now) > 0):
            return None
        pods = live.ready_pods(self.kube.list("Pod", owner.namespace, b.serving_label_selector(owner)))
        return live.read(self.kube, owner.namespace, pods, now)

    def _set_finalizer(self, body: Mapping[str, Any], present: bool) -> None:
        patch = finalizer_patch(body["metadata"], c.FINALIZER, present)
        if patch:
            meta = body["metadata"]
            body["metadata"].update(self.kube.json_patch(c.KIND, meta["namespace"], meta["name"], patch)["metadata"])

    def _finalize(self, body: dict[str, Any], spec: Spec, owner: b.Owner) -> None:
        meta = body["metadata"]
        name = b.cleanup_job_name(owner)
        children = Children(self.kube, owner)
        step = plan_cleanup(spec, owner, self.images, children.job(name),
                            _parse_time(meta["deletionTimestamp"]), _parse_time(utcnow()), self.cleanup_timeout_s,
                            body.get("status"))
        if step.create_job:
            self.kube.create_or_adopt(step.create_job)
        if step.stop_job:
            children.delete("Job", name)
        if step.event:
            self.post_event(body, *step.event)
        if step.release:
            self._set_finalizer(body, False)
        else:
            self.requeue(owner.namespace, owner.name, min(5.0, self.cleanup_timeout_s / 4))

    @staticmethod
    def _observe(children: Children, run: Mapping[str, Any]) -> pipeline.Observed:
        observed = pipeline.Observed()
        owner = children.owner
        if run["stage"] == "train":
            observed.training_job = children.job(b.training_job_name(owner, run["version"], run["attempt"]),
                                                 run["specHash"])
        elif run["stage"] == "compress":
            observed.compression_job = children.job(b.compression_job_name(owner, run["version"]), run["specHash"])
        observed.deployment = children.deployment()
        # Read whatever the strategy: a canary outlives a switch to Replace until the stable one has rolled out.
        observed.canary = children.deployment(b.canary_name(owner))
        return observed

    def _write_invalid(self, body: Mapping[str, Any], message: str, now: str, reason: str = "InvalidSpec") -> None:
        status = dict(body.get("status") or {})
        generation = body["metadata"].get("generation", 1)
        if status.get("phase") == "Failed" and status.get("message") == message \
                and status.get("observedGeneration") == generation:
            return
        status.update(phase="Failed", message=message, observedGeneration=generation,
                      conditions=set_condition(list(status.get("conditions") or []), "Ready", False, reason, message,
                                               generation, now))
        self.kube.replace_status(body, status)
        self.post_event(body, "Warning", reason, message)

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


def _parse_time(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
