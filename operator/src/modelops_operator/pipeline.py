"""Reconcile planning: from a ModelDeployment and its observed children to what should happen.

Pure. The kopf handlers observe (read Jobs, pods, the serving Deployment), call `plan`, then
carry the plan out (apply and delete objects, patch status, post events). Everything the plan
needs to resume after an operator restart is in the resource's status (`status.pipeline`) and
in the deterministic names of the children, never in the operator's memory.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from modelops_contracts.report import EXIT_TERMINATED, REASON_BY_EXIT_CODE, ReportError, StageReport, decode

from . import builders as b
from . import constants as c
from . import policy
from .conditions import get_condition, set_condition
from .ownership import FOREIGN, InTheWay
from .spec import Spec
from .stuck import Stuck

# Pods are not watched: while a stage Job's pods are starting, look again this often for a reason they do not.
RECHECK_STARTING_S = 15.0


@dataclass(frozen=True)
class JobState:
    """A stage Job as observed: its outcome and, once finished, what its chief pod said."""
    active: bool = True
    succeeded: bool = False
    failed: bool = False
    report: StageReport | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    starting: bool = False           # active, but not every pod it runs is ready yet
    stuck: Stuck | None = None       # why its pods do not start, when Kubernetes says
    placement: str | None = None     # the placement hash it was made with (None: made before the label)
    suspended: bool = False          # waiting for admission (Kueue unsuspends it), so not running yet

    def waiting_note(self, queue: str | None) -> str:
        if not (self.active and self.suspended):
            return ""
        return f"; suspended until admitted{f' by queue {queue}' if queue else ''}"


@dataclass(frozen=True)
class DeploymentState:
    version: str | None
    desired: int
    replicas: int
    ready: int
    updated: int
    rolled_out: bool      # as `kubectl rollout status`: every desired replica updated and available, no old one left
    available: int = 0
    replicas_applied_by_us: bool = False   # spec.replicas is in this operator's applied configuration

    @property
    def ready_text(self) -> str:
        """Ready replicas out of desired; old pods that are still ready during a surge do not count twice."""
        return f"{min(self.ready, self.desired)}/{self.desired}"


@dataclass
class Observed:
    training_job: JobState | None = None      # None: the Job does not exist, or is not ours
    compression_job: JobState | None = None
    deployment: DeploymentState | None = None
    # Objects holding the names of children this plan wants, and not ours (see ownership.py).
    in_the_way: dict[tuple[str, str], InTheWay] = field(default_factory=dict)


@dataclass
class Plan:
    apply: list[dict[str, Any]] = field(default_factory=list)          # create-or-adopt / server-side apply
    create_only: list[dict[str, Any]] = field(default_factory=list)    # immutable objects: create, or adopt as is
    # Applied first, by c.HANDOVER_MANAGER: keeps a field's value while this operator lets go of it.
    handover: list[dict[str, Any]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)        # (kind, name)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)   # (type, reason, message)
    recheck_after_s: float | None = None                               # reconcile again without an event


# --- reading what pods and Jobs say (pure helpers over API dicts) --------------------------

def job_state(job: Mapping[str, Any] | None, pods: list[Mapping[str, Any]]) -> JobState | None:
    """Condense a Job and its pods into a JobState; the chief is the pod with completion index 0."""
    if job is None:
        return None
    conditions = {x.get("type"): x for x in (job.get("status") or {}).get("conditions") or []
                  if x.get("status") == "True"}
    succeeded = "Complete" in conditions
    failed = "Failed" in conditions
    report, reason, message = None, None, None
    for pod in _chief_first(pods, succeeded):
        terminated = _terminated(pod)
        if terminated is None:
            continue
        try:
            report = decode(terminated.get("message") or "")
        except ReportError as e:
            report = None
            if succeeded:   # a success whose report breaks the contract (e.g. a NaN) is judged, not awaited
                reason, message = "InvalidReport", f"pod {pod['metadata']['name']}: invalid stage report: {e}"
        if failed or not succeeded:
            code = terminated.get("exitCode")
            reason = (REASON_BY_EXIT_CODE.get(code) or terminated.get("reason") or "Error")
            text = (terminated.get("message") or "").strip().splitlines()
            message = f"pod {pod['metadata']['name']} exited with code {code} ({terminated.get('reason') or 'Error'})"
            if report is None and text:
                message += f": {text[-1][:300]}"
        break
    if succeeded and report is None and reason is None:
        # No pod left to read (deleted, garbage-collected): waiting would never end; another attempt can.
        reason, message = "ReportMissing", "the Job succeeded but none of its pods is left with a stage report"
    if failed and conditions["Failed"].get("reason") == "DeadlineExceeded":
        # The Job controller killed the pods: what they said while dying (Terminated) is not the cause.
        report, reason = None, "DeadlineExceeded"
        message = (f"{conditions['Failed'].get('message') or 'the Job ran past its deadline'} "
                   f"(activeDeadlineSeconds {(job.get('spec') or {}).get('activeDeadlineSeconds')})")
    elif failed and reason is None:
        job_condition = conditions["Failed"]
        reason = job_condition.get("reason") or "JobFailed"
        message = job_condition.get("message") or "the Job failed"
    return JobState(active=not (succeeded or failed), succeeded=succeeded, failed=failed, report=report,
                    failure_reason=reason, failure_message=message,
                    placement=((job.get("metadata") or {}).get("labels") or {}).get(c.LABEL_PLACEMENT_HASH),
                    suspended=bool((job.get("spec") or {}).get("suspend")))


def _chief_first(pods: list[Mapping[str, Any]], succeeded: bool) -> list[Mapping[str, Any]]:
    def key(pod: Mapping[str, Any]) -> tuple:
        meta = pod.get("metadata") or {}
        index = (meta.get("annotations") or {}).get("batch.kubernetes.io/job-completion-index", "0")
        phase = (pod.get("status") or {}).get("phase")
        # For a succeeded Job, the chief's successful pod; for a failed one, the newest failure, but never a
        # pod stopped by SIGTERM before one that failed on its own (the Job stops the chief when a worker fails).
        wanted = "Succeeded" if succeeded else "Failed"
        stopped = not succeeded and (_terminated(pod) or {}).get("exitCode") == EXIT_TERMINATED
        return (stopped, index != "0", phase != wanted, _negated_time(meta.get("creationTimestamp") or ""))
    return sorted(pods, key=key)


def _negated_time(ts: str) -> tuple[int, ...]:
    return tuple(-int(x) for x in re.findall(r"\d+", ts))


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    status = pod.get("status") or {}
    for container in status.get("initContainerStatuses") or []:   # one that failed: the stage never ran
        terminated = (container.get("state") or {}).get("terminated")
        if terminated and terminated.get("exitCode"):
            return terminated
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            return terminated
    return None


def deployment_state(deployment: Mapping[str, Any] | None) -> DeploymentState | None:
    if deployment is None:
        return None
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = spec.get("replicas", 1)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    generation_seen = status.get("observedGeneration", 0) >= (deployment.get("metadata") or {}).get("generation", 0)
    updated = status.get("updatedReplicas", 0)
    replicas = status.get("replicas", 0)
    ready = status.get("readyReplicas", 0)
    available = status.get("availableReplicas", 0)
    rolled_out = generation_seen and updated >= desired and replicas <= updated and available >= updated
    ours = any(m.get("manager") == c.FIELD_MANAGER and m.get("operation") == "Apply"
               and "f:replicas" in ((m.get("fieldsV1") or {}).get("f:spec") or {})
               for m in (deployment.get("metadata") or {}).get("managedFields") or [])
    return DeploymentState(version=labels.get(c.LABEL_VERSION), desired=desired, replicas=replicas, ready=ready,
                           updated=updated, rolled_out=rolled_out, available=available, replicas_applied_by_us=ours)


# --- the run: which version and attempt the pipeline is on ----------------------------------

def version_number(version: str | None) -> int:
    m = re.fullmatch(r"v(\d+)", version or "")
    return int(m.group(1)) if m else 0


def current_run(status: Mapping[str, Any], spec: Spec, now: str, owner: b.Owner) -> tuple[dict[str, Any], bool]:
    """The pipeline run for this spec: the one in status, or a new version when the spec changed.

    Returns (run, is_new).
    """
    run = copy.deepcopy(status.get("pipeline") or {})
    if (run.get("specHash") in (spec.version_hash, spec.legacy_version_hash) and run.get("version")
            and not _identity_fixes(run, spec)):
        run["specHash"] = spec.version_hash   # a run recorded under the legacy hash carries on
        return run, False
    known = [version_number(status.get("latestVersion")), version_number(run.get("version"))]
    known += [version_number(h.get("version")) for h in status.get("history") or []]
    version = f"v{max(known) + 1}"
    return {"version": version, "attempt": 1, "stage": "train", "specHash": spec.version_hash,
            "identityHash": spec.identity_hash, "startedAt": now, "seed": b.attempt_seed(owner, version, 1),
            "artifactPath": b.artifact_path(owner, version)}, True


def stored_under_uid(owner: b.Owner, entry: Mapping[str, Any]) -> str | None:
    """The uid in a version's directory; None for a version started before versions lived under it."""
    return owner.uid if entry.get("artifactPath") else None


def _identity_fixes(run: Mapping[str, Any], spec: Spec) -> bool:
    """A version that failed on unwritable storage is retried once spec.podSecurityContext changes."""
    return (run.get("stage") == "failed" and run.get("reason") == "StorageError"
            and run.get("identityHash", spec.identity_hash) != spec.identity_hash)


# --- the plan ------------------------------------------------------------------------------

def plan(body: Mapping[str, Any], spec: Spec, observed: Observed, images: b.Images, now: str) -> Plan:
    meta, status = body["metadata"], copy.deepcopy(body.get("status") or {})
    owner = b.Owner(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])
    generation = meta.get("generation", 1)
    out = Plan()
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    before = list(conditions)   # as the last pass left them: Warnings are posted on change only

    def condition(type_: str, ok: bool | None, reason: str, message: str) -> None:
        nonlocal conditions
        conditions = set_condition(conditions, type_, ok, reason, message, generation, now)

    def event(kind: str, reason: str, message: str) -> None:
        out.events.append((kind, reason, message))

    history = list(status.get("history") or [])

    def record(version: str, **fields: Any) -> None:
        nonlocal history
        entry = next((h for h in history if h.get("version") == version), None)
        if entry is None:
            entry = {"version": version}
            history.insert(0, entry)
        entry.update({k: v for k, v in fields.items() if v is not None})
        history = trim_history(history, {status.get("modelVersion"), spec.pinned_version}, c.HISTORY_LIMIT)

    run, is_new = current_run(status, spec, now, owner)
    version = run["version"]
    if is_new:
        old = status.get("pipeline") or {}
        if old.get("version") and old.get("stage") not in ("done", "failed"):
            record(old["version"], outcome="Superseded", finishedAt=now,
                   message=f"the spec changed; superseded by {version}")
            out.delete.extend(_stage_objects(owner, old["version"], old.get("attempt", 1)))
        # Finished versions' Jobs, ConfigMaps and worker Services are kept one version back, for
        # `kubectl logs`; older ones go as each new version starts, or they would pile up forever.
        expired = next((h for h in history if version_number(h.get("version")) == version_number(version) - 2), None)
        if expired:
            out.delete.extend(_stage_objects(owner, expired["version"], expired.get("attempts") or 1))
        record(version, outcome="Training", startedAt=now, attempts=1, artifactPath=run["artifactPath"])
        event("Normal", "VersionStarted", f"{version}: training started (spec generation {generation})")
        condition("Trained", False, "Training", f"{version}: training attempt 1")
        condition("Evaluated", None, "Pending", f"{version}: waiting for training")
        condition("Compressed", None, "Pending", f"{version}: waiting for evaluation")

    phase, message = "Pending", ""
    # What was observed belongs to the stage the run was on; once a decision moves the run on, the
    # next stage's Job is one nobody has looked at yet (created below, or adopted if it exists).
    training_job, compression_job = observed.training_job, observed.compression_job
    # Stages advance within one pass when a decision is already possible.
    for _ in range(4):
        stage = run["stage"]
        if stage == "train":
            attempt = run["attempt"]
            job_name = b.training_job_name(owner, version, attempt)
            cfg = b.build_job_config(spec, owner, "train", version, attempt, stored_under_uid(owner, run))
            out.apply.append(b.build_config_map(owner, job_name, cfg, "training", spec.version_hash))
            if spec.workers > 1:
                out.apply.append(b.build_workers_service(owner, job_name, version))
            out.create_only.append(b.build_training_job(spec, owner, images, version, attempt, cfg.model.uid))
            job = training_job
            if job is None or job.active:
                phase = "Training" if attempt == 1 else "Retraining"
                message = (f"{version}: training attempt {attempt} of {spec.max_retrains + 1} ({job_name})"
                           + (job.waiting_note(spec.queue_name) if job else ""))
                if job is not None:
                    message = _watch_start(out, job, message, "Trained", phase, condition, event, status)
                    message = _restart_for_placement(out, job, job_name, spec, message)
                break
            if job.succeeded and job.report is None and not job.failure_reason:
                phase, message = "Evaluating", f"{version}: waiting for the stage report of {job_name}"
                break
            decision = policy.after_training(spec, attempt, job.report if job.succeeded or job.report else None,
                                             job.failure_reason, job.failure_message)
            training_job = None
            trained_metrics = dict(job.report.metrics) if job.report and job.report.succeeded else {}
            if isinstance(decision, policy.Compress):
                run.update(stage="compress", metrics=trained_metrics)
                condition("Trained", True, "TrainingSucceeded", f"{version}: attempt {attempt} trained")
                condition("Evaluated", True, "ThresholdMet", f"{version}: {decision.message}")
                condition("Compressed", False, "Compressing", f"{version}: {spec.compression_method}")
                record(version, outcome="Compressing", attempts=attempt, metrics=trained_metrics)
                event("Normal", "Evaluated", f"{version}: {decision.message}")
                continue
            if isinstance(decision, policy.Retrain):
                run.update(attempt=decision.attempt, seed=b.attempt_seed(owner, version, decision.attempt))
                record(version, outcome="Training", attempts=decision.attempt, metrics=trained_metrics or None)
                condition("Trained", False, "Retraining", f"{version}: attempt {decision.attempt}")
                condition("Evaluated", False, decision.reason, decision.message)
                event("Warning", decision.reason, f"{version}: {decision.message}")
                continue
            _fail(run, decision, version, record, event, now, trained_metrics)
            condition("Trained" if decision.reason != "RetrainsExhausted" else "Evaluated", False,
                      decision.reason, decision.message)
            continue
        if stage == "compress":
            job_name = b.compression_job_name(owner, version)
            cfg = b.build_job_config(spec, owner, "compress", version, 1, stored_under_uid(owner, run))
            out.apply.append(b.build_config_map(owner, job_name, cfg, "compression", spec.version_hash))
            out.create_only.append(b.build_compression_job(spec, owner, images, version, cfg.model.uid))
            job = compression_job
            if job is None or job.active:
                phase, message = "Compressing", (f"{version}: {spec.compression_method} compression ({job_name})"
                                                 + (job.waiting_note(spec.queue_name) if job else ""))
                if job is not None:
                    message = _watch_start(out, job, message, "Compressed", phase, condition, event, status)
                    message = _restart_for_placement(out, job, job_name, spec, message)
                break
            if job.succeeded and job.report is None and not job.failure_reason:
                phase, message = "Compressing", f"{version}: waiting for the stage report of {job_name}"
                break
            trained_value = (run.get("metrics") or {}).get(spec.metric)
            decision = policy.after_compression(spec, job.report, trained_value if trained_value is not None else 0.0,
                                                job.failure_message)
            compression_job = None
            if isinstance(decision, policy.Serve):
                metrics = dict(run.get("metrics") or {})
                if job.report and job.report.succeeded:
                    metrics.update({f"compressed{k[0].upper()}{k[1:]}": v for k, v in job.report.metrics.items()})
                    for key in ("ratio", "float32Bytes", "compressedBytes"):
                        if isinstance(job.report.compression.get(key), (int, float)):
                            metrics[f"compression{key[0].upper()}{key[1:]}"] = float(job.report.compression[key])
                run.update(stage="serve", metrics=metrics, servable=decision.servable)
                condition("Compressed", decision.servable == "tflite", decision.reason, f"{version}: {decision.message}")
                # Recorded now, not on deployment: a pin can hold the rollout, and the version must be pinnable.
                record(version, outcome="Deploying", metrics=metrics, servable=decision.servable)
                event("Normal" if decision.servable == "tflite" else "Warning", decision.reason,
                      f"{version}: {decision.message}")
                continue
            _fail(run, decision, version, record, event, now, None)
            condition("Compressed", False, decision.reason, decision.message)
            continue
        break

    # Serving: runs whatever the pipeline is doing, so the current version serves while a new one trains.
    served = status.get("modelVersion")
    target, servable = _serving_target(spec, run, history, served)
    deployment = observed.deployment
    if spec.pinned_version and target is None:
        unknown = (f"serving.modelVersion {spec.pinned_version} was never deployed; known: "
                   + (", ".join(h["version"] for h in history if h.get("servable")) or "none"))
        if (get_condition(before, "Ready") or {}).get("message") != unknown:   # on change, not every pass
            event("Warning", "UnknownVersion", f"serving.modelVersion {spec.pinned_version} was never deployed")
        condition("Ready", False, "UnknownVersion", unknown)
    if target:
        stored = run if run["version"] == target else next((h for h in history if h.get("version") == target), {})
        wanted, unwanted = b.build_serving_objects(spec, owner, images, target, servable,
                                                   stored_under_uid(owner, stored))
        out.apply.extend(wanted)
        if spec.autoscaling and deployment is not None and deployment.replicas_applied_by_us:
            # Applying without spec.replicas would drop it to the default of 1 before the HPA acts:
            # the documented hand-over keeps the current count under another manager first.
            out.handover.append(b.build_replicas_handover(owner, deployment.desired))
        # An HPA or PDB becomes unwanted only through a spec change (seen by this pass, or made while
        # the operator was down): deleting on every pass would cost two requests each time for nothing.
        if generation != (body.get("status") or {}).get("observedGeneration"):
            out.delete.extend(unwanted)
        live = deployment is not None and deployment.version == target and deployment.rolled_out
        if live:
            if served != target:
                event("Normal", "Deployed", f"{target} is serving ({deployment.ready_text} replicas ready)")
            served = target
            condition("Deployed", True, "RolledOut", f"{target} rolled out")
            if run["stage"] == "serve" and run["version"] == target:
                run["stage"] = "done"
                record(target, outcome="Deployed", deployedAt=now, finishedAt=now, servable=servable)
                for h in history:
                    if h.get("outcome") == "Deployed" and h["version"] != target:
                        h["outcome"] = "Superseded"
        else:
            progress = (f" ({deployment.updated}/{deployment.desired} updated, {deployment.available} available)"
                        if deployment is not None and deployment.version == target else "")
            condition("Deployed", False, "RollingOut", f"rolling out {target}{progress}")
            if run["stage"] in ("serve", "done") or spec.pinned_version:
                phase, message = "Deploying", f"rolling out {target}{progress}"
    if run["stage"] == "done" and phase == "Pending":
        phase, message = "Ready", f"{served or version} is serving"
    if run["stage"] == "serve" and target and target != version and phase == "Pending":
        phase, message = "Ready", (f"{served or target} is serving, pinned by serving.modelVersion; {version} passed "
                                   "and rolls out once the pin is removed or set to it")
    if run["stage"] == "failed":
        phase = "Failed"
        message = run.get("message", "")
        if served:
            message += f"; still serving {served}"

    for way in _make_way(out, observed.in_the_way):
        type_ = CONDITION_OF_COMPONENT.get(way.component, "Ready")
        if (get_condition(before, type_) or {}).get("message") != way.message:
            event("Warning", "NameConflict", way.message)
        condition(type_, False, "NameConflict", way.message)
        if phase != "Failed":
            message = way.message

    ready_replicas = deployment.ready if deployment else 0
    desired = deployment.desired if deployment else 0
    # Ready means the rollout is complete, as `kubectl rollout status` judges it: not one replica of two.
    complete = (bool(served) and deployment is not None and deployment.version == served and deployment.rolled_out
                and desired > 0)
    is_ready = complete and (not spec.pinned_version or served == spec.pinned_version)
    if not (spec.pinned_version and target is None):
        condition("Ready", is_ready, "Serving" if is_ready else "NotServing",
                  f"{served} serving, {deployment.ready_text} replicas ready" if is_ready
                  else _not_ready_message(served, target, deployment))
    if phase == "Ready" and not is_ready:
        phase, message = "Deploying", f"waiting for ready replicas of {served}"

    status.update(
        phase=phase, message=message, observedGeneration=generation, latestVersion=version,
        attempts=run["attempt"], pipeline=run, conditions=conditions, history=history,
        replicas=deployment.replicas if deployment else 0, readyReplicas=ready_replicas,
        ready=deployment.ready_text if deployment else "0/0", selector=",".join(f"{k}={v}" for k, v in b.serving_selector(owner).items()),
    )
    if served:
        status["modelVersion"] = served
        entry = next((h for h in history if h.get("version") == served), {})
        status["metrics"] = dict(entry.get("metrics") or {})
        value = status["metrics"].get(spec.metric)
        status["metricSummary"] = f"{spec.metric}={value:.4g}" if value is not None else ""
        status["endpoint"] = b.endpoint(owner, images.cluster_domain)
    if status.get("phase") != (body.get("status") or {}).get("phase"):
        event("Normal" if phase != "Failed" else "Warning", f"Phase{phase}", message or phase)
    out.status = status
    return out


def trim_history(history: list[dict[str, Any]], keep: set[str | None], limit: int) -> list[dict[str, Any]]:
    """The newest `limit` entries, never dropping a kept one (the served or pinned version).

    The served version's entry says which servable it runs (an uncompressed fallback): without
    it the next rendering would default to tflite and re-roll a version that failed its check.
    """
    kept = [h for h in history if h.get("version") in keep]
    others = [h for h in history if h.get("version") not in keep][:max(0, limit - len(kept))]
    chosen = {id(h) for h in kept + others}
    return [h for h in history if id(h) in chosen]


def _restart_for_placement(out: Plan, job: JobState, job_name: str, spec: Spec, message: str) -> str:
    """A running stage Job made with other placement (resources, node selection, identity, …) is deleted,
    to be made again as the spec now says: its pod template cannot change, and a pod refused by a quota or
    unschedulable would otherwise wait for its deadline. Neither a new version nor a finished Job's result."""
    if not job.active or job.placement in (None, spec.placement_hash):
        return message
    out.delete.append(("Job", job_name))
    out.create_only = [o for o in out.create_only if o["metadata"]["name"] != job_name]
    return f"{message}: restarting it with the new placement"


def _watch_start(out: Plan, job: JobState, message: str, condition_type: str, normal_reason: str,
                 condition, event, status: Mapping[str, Any]) -> str:
    """An active stage Job: say why its pods do not start (once per new reason), and look again soon."""
    if job.starting:
        out.recheck_after_s = RECHECK_STARTING_S
    before = (get_condition(status.get("conditions") or [], condition_type) or {}).get("reason")
    if job.stuck is None:
        if before not in (None, normal_reason, "Training", "Retraining", "Compressing"):
            condition(condition_type, False, normal_reason, message)   # the earlier trouble has cleared
        return message
    message = f"{message}: not running: {job.stuck.message}"
    condition(condition_type, False, job.stuck.reason, message)
    if before != job.stuck.reason:
        event("Warning", job.stuck.reason, message)
    return message


def _not_ready_message(served: str | None, target: str | None, deployment: DeploymentState | None) -> str:
    if deployment is None or not (served or target):
        return "no ready serving replica yet"
    if deployment.desired == 0:
        return f"{served or target} is scaled to 0 replicas"
    return (f"rolling out {deployment.version}: {deployment.updated}/{deployment.desired} updated, "
            f"{deployment.available} available, {deployment.ready_text} ready")


def _fail(run: dict, decision: policy.Fail, version: str, record, event, now: str,
          metrics: dict | None) -> None:
    run.update(stage="failed", reason=decision.reason, message=f"{version}: {decision.message}")
    record(version, outcome="Failed", finishedAt=now, message=f"{decision.reason}: {decision.message}",
           metrics=metrics or None)
    event("Warning", decision.reason, f"{version}: {decision.message}")


def _serving_target(spec: Spec, run: Mapping[str, Any], history: list[Mapping[str, Any]],
                    served: str | None) -> tuple[str | None, str]:
    """Which version the serving Deployment should run, and which servable of it."""
    def servable_of(version: str) -> str:
        entry = next((h for h in history if h.get("version") == version), {})
        return entry.get("servable") or "tflite"
    if spec.pinned_version:
        known = any(h.get("version") == spec.pinned_version and h.get("servable") for h in history)
        return (spec.pinned_version, servable_of(spec.pinned_version)) if known else (None, "tflite")
    if run.get("stage") in ("serve", "done"):
        return run["version"], run.get("servable") or servable_of(run["version"])
    if served:
        return served, servable_of(served)
    return None, "tflite"


def _stage_objects(owner: b.Owner, version: str, attempts: int) -> list[tuple[str, str]]:
    """Everything a version's stages made: the Jobs of every attempt, their ConfigMaps and worker Services."""
    training = [b.training_job_name(owner, version, a) for a in range(1, attempts + 1)]
    compression = b.compression_job_name(owner, version)
    return ([("Job", j) for j in training + [compression]] + [("ConfigMap", b.config_map_name(j)) for j in training + [compression]]
            + [("Service", b.workers_service_name(j)) for j in training])


CONDITION_OF_COMPONENT = {"training": "Trained", "compression": "Compressed", "serving": "Deployed"}


def _make_way(out: Plan, in_the_way: Mapping[tuple[str, str], InTheWay]) -> list[InTheWay]:
    """Keep the plan off objects that are not ours; returns the foreign ones, which block it.

    A stale Job (an earlier resource's, or another spec's) is deleted and made again once gone:
    its report must never be judged. Other stale objects are taken over by the apply, unless
    being deleted. A foreign object is never touched, and no Job starts beside a foreign object
    of its component (the ConfigMap it would mount could be someone else's).
    """
    def way(obj: Mapping[str, Any]) -> InTheWay | None:
        return in_the_way.get((obj["kind"], obj["metadata"]["name"]))

    foreign = [w for w in in_the_way.values() if w.verdict == FOREIGN]
    blocked = {w.component for w in foreign}
    for job in out.create_only:
        stale = way(job)
        if stale and stale.verdict != FOREIGN and not stale.deleting:
            out.delete.append((stale.kind, stale.name))
    out.create_only = [o for o in out.create_only
                       if way(o) is None and o["metadata"]["labels"].get("app.kubernetes.io/component") not in blocked]
    out.apply = [o for o in out.apply if (w := way(o)) is None or (w.verdict != FOREIGN and not w.deleting)]
    return foreign
