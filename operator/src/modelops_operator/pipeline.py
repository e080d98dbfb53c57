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
from typing import Any, Callable, Mapping

from modelops_contracts.report import EXIT_TERMINATED, REASON_BY_EXIT_CODE, ReportError, StageReport, decode

from . import builders as b
from . import constants as c
from . import canary, live, monitoring, policy
from .conditions import get_condition, set_condition, status_text
from .ownership import FOREIGN, InTheWay
from .spec import Spec, digest
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
    stuck: Stuck | None = None             # why the rolling-out version's pods do not start, when Kubernetes says

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
    # The serving replicas' figures, when read this pass (spec.monitoring, or a canary being judged).
    live: live.Reading | None = None
    canary: DeploymentState | None = None      # the canary Deployment, when there is one of ours


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
    # The modelops.io/rollout annotation's value this pass acted on: removed last, if still that value.
    clear_rollout_request: str | None = None


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


def current_run(status: Mapping[str, Any], spec: Spec, now: str, owner: b.Owner,
                images: b.Images) -> tuple[dict[str, Any], bool]:
    """The pipeline run for this spec: the one in status, or a new version when the spec changed.

    Returns (run, is_new).
    """
    run = copy.deepcopy(status.get("pipeline") or {})
    if (run.get("specHash") in (spec.version_hash, spec.legacy_version_hash) and run.get("version")
            and not _fixed(run, spec, images)):
        run["specHash"] = spec.version_hash   # a run recorded under the legacy hash carries on
        return run, False
    return new_run(status, spec, now, owner, images), True


def new_run(status: Mapping[str, Any], spec: Spec, now: str, owner: b.Owner, images: b.Images,
            trigger: str | None = None) -> dict[str, Any]:
    """The next version's run; `trigger` QualityDrop: trained on the original data plus the collected feedback."""
    known = [version_number(status.get("latestVersion")), version_number((status.get("pipeline") or {}).get("version"))]
    known += [version_number(h.get("version")) for h in status.get("history") or []]
    version = f"v{max(known) + 1}"
    run = {"version": version, "attempt": 1, "stage": "train", "specHash": spec.version_hash,
           **fix_hashes(spec, images), "startedAt": now, "seed": b.attempt_seed(owner, version, 1),
           "artifactPath": b.artifact_path(owner, version)}
    if trigger:
        run.update(trigger=trigger, feedback=True)
    return run


def stored_under_uid(owner: b.Owner, entry: Mapping[str, Any]) -> str | None:
    """The uid in a version's directory; None for a version started before versions lived under it."""
    return owner.uid if entry.get("artifactPath") else None


# A failed version is retried when what its failure depends on changes, though no model field did: who
# the pods run as, the spec's or the operator's default (unwritable storage), or the training resources.
RETRIED_WHEN = {"StorageError": "identityHash", "OOMKilled": "resourcesHash"}


def fix_hashes(spec: Spec, images: b.Images) -> dict[str, str]:
    return {"identityHash": digest(b.pod_security(spec, images)), "resourcesHash": digest(spec.training_resources)}


def _fixed(run: Mapping[str, Any], spec: Spec, images: b.Images) -> bool:
    key = RETRIED_WHEN.get(run.get("reason")) if run.get("stage") == "failed" else None
    return key is not None and key in run and run[key] != fix_hashes(spec, images)[key]


# --- the plan: one pass's shared state, the stage machine, then serving ----------------------

@dataclass(frozen=True)
class Next:
    """The run moved on to `stage` (or back, for another attempt): look at it in the same pass."""
    stage: str


@dataclass(frozen=True)
class Stop:
    """Nothing more to decide this pass: the stage waits, and says so in phase and message."""
    phase: str
    message: str


Transition = Next | Stop


class Pass:
    """What one planning pass shares: its inputs, the status and plan being built, and their bookkeeping.

    Conditions, history and events are written only through `condition`, `record` and `event`, so every
    stage keeps them the same way (transition times, trimmed history, Warnings on change only).
    """

    def __init__(self, body: Mapping[str, Any], spec: Spec, observed: Observed, images: b.Images, now: str):
        meta = body["metadata"]
        self.body, self.spec, self.observed, self.images, self.now = body, spec, observed, images, now
        self.owner = b.Owner(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])
        self.generation = meta.get("generation", 1)
        self.status = copy.deepcopy(body.get("status") or {})
        self.out = Plan()
        self.conditions: list[dict[str, Any]] = list(self.status.get("conditions") or [])
        self.before = list(self.conditions)   # as the last pass left them: Warnings are posted on change only
        self.history: list[dict[str, Any]] = list(self.status.get("history") or [])
        self.run, self.is_new = current_run(self.status, spec, now, self.owner, images)
        self.version: str = self.run["version"]
        self.phase, self.message = "Pending", ""
        self.served: str | None = self.status.get("modelVersion")
        # What was observed belongs to the stage the run was on; once a decision moves the run on, the
        # next stage's Job is one nobody has looked at yet (created, or adopted if it exists): taken once.
        self._jobs = {"train": observed.training_job, "compress": observed.compression_job}

    def take_job(self, stage: str) -> JobState | None:
        return self._jobs.pop(stage, None)

    def condition(self, type_: str, ok: bool | None, reason: str, message: str) -> None:
        self.conditions = set_condition(self.conditions, type_, ok, reason, message, self.generation, self.now)

    def changed(self, type_: str, message: str) -> bool:
        """Whether the last pass left condition `type_` saying something else (to warn on change only)."""
        return (get_condition(self.before, type_) or {}).get("message") != message

    def event(self, kind: str, reason: str, message: str) -> None:
        self.out.events.append((kind, reason, message))

    def record(self, version: str, **fields: Any) -> None:
        """Update (or start) a version's history entry; None values leave a field as it was."""
        entry = next((h for h in self.history if h.get("version") == version), None)
        if entry is None:
            entry = {"version": version}
            self.history.insert(0, entry)
        entry.update({k: v for k, v in fields.items() if v is not None})
        self.history = trim_history(self.history, {self.status.get("modelVersion"), self.spec.pinned_version},
                                    c.HISTORY_LIMIT)

    def entry(self, version: str | None) -> dict[str, Any]:
        return next((h for h in self.history if h.get("version") == version), {})


def plan(body: Mapping[str, Any], spec: Spec, observed: Observed, images: b.Images, now: str) -> Plan:
    p = Pass(body, spec, observed, images, now)
    if p.is_new:
        _start_version(p, p.status.get("pipeline") or {}, f"spec generation {p.generation}")
    _monitor(p)
    _run_stages(p)
    target = _serve(p)
    _retire_canary(p, target)
    _unanswered_request(p)
    _summarise(p, target)
    _keep_off_foreign(p)
    _judge_ready(p, target)
    _write_status(p)
    return p.out


def _start_version(p: Pass, old: Mapping[str, Any], why: str) -> None:
    """A new version: supersede the unfinished one, expire old stage objects, start training."""
    version = p.version
    if old.get("version") and old.get("stage") not in ("done", "failed"):
        p.record(old["version"], outcome="Superseded", finishedAt=p.now,
                 message=f"the spec changed; superseded by {version}")
        p.out.delete.extend(_stage_objects(p.owner, old["version"], old.get("attempt", 1)))
    # Finished versions' Jobs, ConfigMaps and worker Services are kept one version back, for
    # `kubectl logs`; older ones go as each new version starts, or they would pile up forever.
    expired = next((h for h in p.history if version_number(h.get("version")) == version_number(version) - 2), None)
    if expired:
        p.out.delete.extend(_stage_objects(p.owner, expired["version"], expired.get("attempts") or 1))
    p.record(version, outcome="Training", startedAt=p.now, attempts=1, artifactPath=p.run["artifactPath"])
    p.event("Normal", "VersionStarted", f"{version}: training started ({why})")
    p.condition("Trained", False, "Training", f"{version}: training attempt 1")
    p.condition("Evaluated", None, "Pending", f"{version}: waiting for training")
    p.condition("Compressed", None, "Pending", f"{version}: waiting for evaluation")


# --- live quality (spec.monitoring): publish what the replicas measured, act on a drop ---------

def _monitor(p: Pass) -> None:
    """status.live and the LiveQuality condition from this pass's reading (none: not due, keep the last);
    a drop becomes an Alert or the next version (monitoring.decide says which, and why)."""
    if not p.spec.monitoring_enabled:
        p.status.pop("live", None)
        p.conditions = [x for x in p.conditions if x.get("type") != "LiveQuality"]
        return
    reading = p.observed.live
    if reading is None:
        return
    served = p.served
    p.status["live"] = live.status_of(reading, served)
    busy = p.version if p.run["stage"] not in ("done", "failed") else None
    decision = monitoring.decide(monitoring.Monitoring.of(p.spec), reading.versions.get(served or ""),
                                 now=live.parse_time(p.now), retrains=_automatic_retrains(p.history), busy=busy)
    message = f"{served}: {decision.message}" if served else decision.message
    if reading.failures:
        message += f"; not answering: {p.status['live']['unreachable']}"
    # On change only, where a drop of a newly served version is a change too.
    old, last = get_condition(p.before, "LiveQuality") or {}, (p.body.get("status") or {}).get("live") or {}
    changed = ((old.get("status"), old.get("reason"), last.get("version"))
               != (status_text(decision.quality), decision.reason, served))
    p.condition("LiveQuality", decision.quality, decision.reason, message)
    if decision.action == monitoring.RETRAIN:
        _retrain(p, decision, message)
    elif changed:
        p.event("Warning" if decision.quality is False else "Normal", decision.reason, message)
    if decision.action != monitoring.NONE and (changed or decision.action == monitoring.RETRAIN) and served:
        p.record(served, liveDecision={"action": decision.action, "reason": decision.reason, "message": message,
                                       "at": p.now, "figures": _present(decision.figures)})


def _retrain(p: Pass, decision: monitoring.Decision, message: str) -> None:
    """The next version, on the original data plus the collected feedback (same spec, same hash)."""
    old = p.run
    p.run = new_run(p.status, p.spec, p.now, p.owner, p.images, trigger="QualityDrop")
    p.version = p.run["version"]
    p.event("Warning", decision.reason, message)
    _start_version(p, old, f"on the collected feedback after {decision.reason} of {p.served}")
    p.record(p.version, trigger="QualityDrop", triggerReason=decision.reason, triggerMessage=message,
             figures=_present(decision.figures))


def _automatic_retrains(history: list[dict[str, Any]]) -> list[float]:
    return [live.parse_time(h["startedAt"]) for h in history
            if h.get("trigger") == "QualityDrop" and h.get("startedAt")]


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    """Without absent figures: status has no nulls."""
    return {k: v for k, v in values.items() if v is not None}


# Stages advance within one pass when a decision is already possible; a bound, since a stage
# may send the run back (another training attempt).
STEPS_PER_PASS = 4


def _run_stages(p: Pass) -> None:
    """Step the run through STAGES until one waits; stages without a row (serve, done, failed) are
    the serving part's, which runs whatever the pipeline is doing."""
    for _ in range(STEPS_PER_PASS):
        stage = STAGES.get(p.run["stage"])
        if stage is None:
            return
        transition = stage(p)
        if isinstance(transition, Stop):
            p.phase, p.message = transition.phase, transition.message
            return
        p.run["stage"] = transition.stage


def _train(p: Pass) -> Transition:
    spec, version, attempt = p.spec, p.version, p.run["attempt"]
    job_name = b.training_job_name(p.owner, version, attempt)
    # Feedback written until the drop was decided: later segments would differ between workers' reads.
    before_ms = int(live.parse_time(p.run["startedAt"]) * 1000) if p.run.get("feedback") else None
    cfg = b.build_job_config(spec, p.owner, "train", version, attempt, stored_under_uid(p.owner, p.run),
                             feedback_before_ms=before_ms)
    p.out.apply.append(b.build_config_map(p.owner, job_name, cfg, "training", spec.version_hash))
    if spec.workers > 1:
        p.out.apply.append(b.build_workers_service(p.owner, job_name, version))
    p.out.create_only.append(b.build_training_job(spec, p.owner, p.images, version, attempt, cfg.model.uid))
    job = p.take_job("train")
    phase = "Training" if attempt == 1 else "Retraining"
    wait = _wait_for(p, job, job_name, "Trained", phase, "Evaluating",
                     f"{version}: training attempt {attempt} of {spec.max_retrains + 1} ({job_name})")
    if wait is not None:
        return wait
    decision = policy.after_training(spec, attempt, job.report if job.succeeded or job.report else None,
                                     job.failure_reason, job.failure_message)
    trained = dict(job.report.metrics) if job.report and job.report.succeeded else {}
    if isinstance(decision, policy.Compress):
        ran = job.report.training
        p.run["metrics"] = trained
        p.condition("Trained", True, "TrainingSucceeded", f"{version}: attempt {attempt} trained{_ran_on(ran)}")
        p.condition("Evaluated", True, "ThresholdMet", f"{version}: {decision.message}")
        p.condition("Compressed", False, "Compressing", f"{version}: {spec.compression_method}")
        p.record(version, outcome="Compressing", attempts=attempt, metrics=trained, training=ran or None)
        p.event("Normal", "Evaluated", f"{version}: {decision.message}")
        return Next("compress")
    if isinstance(decision, policy.Retrain):
        p.run.update(attempt=decision.attempt, seed=b.attempt_seed(p.owner, version, decision.attempt))
        p.record(version, outcome="Training", attempts=decision.attempt, metrics=trained or None)
        p.condition("Trained", False, "Retraining", f"{version}: attempt {decision.attempt}")
        p.condition("Evaluated", False, decision.reason, decision.message)
        p.event("Warning", decision.reason, f"{version}: {decision.message}")
        return Next("train")
    p.condition("Trained" if decision.reason != "RetrainsExhausted" else "Evaluated", False,
                decision.reason, decision.message)
    return _fail(p, decision, trained)


def _ran_on(ran: Mapping[str, Any]) -> str:
    """' on GPU:0, GPU:1 (mixed_float16, XLA)': what the trainer reported it really used (empty if nothing)."""
    if not ran.get("devices"):
        return ""
    how = [x for x in (ran.get("precision") if ran.get("precision") not in (None, "float32") else None,
                       "XLA" if ran.get("jitCompile") else None) if x]
    return f" on {', '.join(ran['devices'])}" + (f" ({', '.join(how)})" if how else "")


def _compress(p: Pass) -> Transition:
    spec, version = p.spec, p.version
    job_name = b.compression_job_name(p.owner, version)
    cfg = b.build_job_config(spec, p.owner, "compress", version, 1, stored_under_uid(p.owner, p.run))
    p.out.apply.append(b.build_config_map(p.owner, job_name, cfg, "compression", spec.version_hash))
    p.out.create_only.append(b.build_compression_job(spec, p.owner, p.images, version, cfg.model.uid))
    job = p.take_job("compress")
    wait = _wait_for(p, job, job_name, "Compressed", "Compressing", "Compressing",
                     f"{version}: {spec.compression_method} compression ({job_name})")
    if wait is not None:
        return wait
    trained_value = (p.run.get("metrics") or {}).get(spec.metric)
    decision = policy.after_compression(spec, job.report, trained_value if trained_value is not None else 0.0,
                                        job.failure_message)
    if not isinstance(decision, policy.Serve):
        p.condition("Compressed", False, decision.reason, decision.message)
        return _fail(p, decision, None)
    metrics = dict(p.run.get("metrics") or {})
    if job.report and job.report.succeeded:
        metrics.update({f"compressed{k[0].upper()}{k[1:]}": v for k, v in job.report.metrics.items()})
        for key in ("ratio", "float32Bytes", "compressedBytes"):
            if isinstance(job.report.compression.get(key), (int, float)):
                metrics[f"compression{key[0].upper()}{key[1:]}"] = float(job.report.compression[key])
    p.run.update(metrics=metrics, servable=decision.servable)
    p.condition("Compressed", decision.servable == "tflite", decision.reason, f"{version}: {decision.message}")
    # Recorded now, not on deployment: a pin can hold the rollout, and the version must be pinnable.
    p.record(version, outcome="Deploying", metrics=metrics, servable=decision.servable)
    p.event("Normal" if decision.servable == "tflite" else "Warning", decision.reason,
            f"{version}: {decision.message}")
    return Next("canary")


# --- canary (serving.rollout.strategy Canary): the new version beside the stable one, judged live

def _canary(p: Pass) -> Transition:
    """Serve the new version from the canary Deployment and judge it against the stable one; Replace, a pin
    and a first version (nothing stable to compare with) go straight to serving."""
    spec, version, stable = p.spec, p.version, p.served
    if not spec.rollout.canary or not stable or stable == version or spec.pinned_version:
        return Next("serve")
    p.run.setdefault("canaryStartedAt", p.now)
    p.out.apply.append(b.build_canary_deployment(spec, p.owner, p.images, version, p.run.get("servable") or "tflite",
                                                 stored_under_uid(p.owner, p.run)))
    manual, _ = canary.manual_request(_annotations(p))
    if manual:
        p.out.clear_rollout_request = _annotations(p)[canary.ANNOTATION]
    versions = live.published(p.status)   # this pass's read (_monitor ran first), else the last one
    verdict = canary.judge(spec.rollout, versions.get(version), versions.get(stable),
                           ready_for_s=_canary_ready_for(p), age_s=_seconds(p.run["canaryStartedAt"], p.now),
                           manual=manual)
    state = p.observed.canary
    p.status["canary"] = {"version": version, "stableVersion": stable, "decision": verdict.action,
                          "reason": verdict.reason, "message": verdict.message, "figures": verdict.figures,
                          "ready": state.ready_text if state is not None and state.version == version else "0/0"}
    if verdict.action == canary.PROMOTE:
        p.condition("Canary", True, verdict.reason, f"{version}: promoted over {stable}: {verdict.message}")
        p.record(version, canary=verdict.figures)
        p.event("Normal", "CanaryPromoted", f"{version}: {verdict.reason}: {verdict.message}")
        return Next("serve")
    if verdict.action == canary.ABORT:
        return _reject(p, verdict)
    p.out.recheck_after_s = spec.monitoring_period_s   # judged each period (the figures are read on each pass)
    message = f"{version}: canary beside {stable}: {verdict.message}"
    if not spec.monitoring_enabled:
        message += (f"; spec.monitoring is off, so no live figures are read: decide with kubectl annotate "
                    f"md/{p.owner.name} {canary.ANNOTATION}=promote (or abort)")
    if verdict.action == canary.HOLD:
        if (get_condition(p.before, "Canary") or {}).get("reason") != verdict.reason:
            p.event("Warning", verdict.reason, message)
        p.condition("Canary", False, verdict.reason, message)
    else:
        p.condition("Canary", None, verdict.reason, message)
    return Stop("Canary", message)


def _reject(p: Pass, verdict: canary.Verdict) -> Transition:
    """Aborted: the canary goes, the stable version keeps serving, the version is Rejected with the figures."""
    version = p.version
    message = f"canary rejected against {p.served}: {verdict.message}"
    p.run.update(reason=verdict.reason, message=f"{version}: {message}")
    p.record(version, outcome="Rejected", finishedAt=p.now, message=f"{verdict.reason}: {message}",
             canary=verdict.figures)
    p.condition("Canary", False, verdict.reason, f"{version}: {message}")
    p.event("Warning", "CanaryAborted", f"{version}: {verdict.reason}: {message}")
    return Next("failed")


def _canary_ready_for(p: Pass) -> float | None:
    """How long every canary pod has been ready (None: not now); the clock restarts if one stops being ready."""
    state = p.observed.canary
    if state is None or state.version != p.version or not state.rolled_out or state.desired == 0:
        p.run.pop("canaryReadySince", None)
        return None
    return _seconds(p.run.setdefault("canaryReadySince", p.now), p.now)


def _seconds(since: str, now: str) -> float:
    return live.parse_time(now) - live.parse_time(since)


def _annotations(p: Pass) -> Mapping[str, str]:
    return p.body["metadata"].get("annotations") or {}


def _retire_canary(p: Pass, target: str | None) -> None:
    """Delete the canary Deployment once nothing needs it: after a promotion only when the stable Deployment
    has rolled out to its version (until then it keeps serving its share: no request fails), at once when
    its version was rejected, superseded or is no longer the one to serve."""
    if p.run["stage"] == "canary":
        return
    p.status.pop("canary", None)
    state, stable = p.observed.canary, p.observed.deployment
    if state is None:
        return
    handing_over = (state.version == target and p.run["stage"] == "serve"
                    and not (stable is not None and stable.version == target and stable.rolled_out))
    if not handing_over:
        # Deletes are carried out before applies: an apply of it this pass (the stage that aborted) would undo this.
        name = b.canary_name(p.owner)
        p.out.apply = [o for o in p.out.apply if not (o["kind"] == "Deployment" and o["metadata"]["name"] == name)]
        p.out.delete.append(("Deployment", name))


def _unanswered_request(p: Pass) -> None:
    """A modelops.io/rollout annotation no canary acted on (none judged, or a value that is no request):
    say so once, and remove it, so that it cannot promote or abort a later canary by surprise."""
    request = _annotations(p).get(canary.ANNOTATION)
    if request is None or p.out.clear_rollout_request is not None:
        return
    _, problem = canary.manual_request(_annotations(p))
    p.event("Warning" if problem else "Normal", "RolloutRequestIgnored",
            problem or f"{canary.ANNOTATION}={request}: no canary is being judged")
    p.out.clear_rollout_request = request


# Stage name -> the function deciding it. A new stage is a new function and a new row.
STAGES: dict[str, Callable[[Pass], Transition]] = {"train": _train, "compress": _compress, "canary": _canary}


def _wait_for(p: Pass, job: JobState | None, job_name: str, condition_type: str, phase: str,
              report_phase: str, message: str) -> Stop | None:
    """A stage Job not finished yet (or finished with its report not read yet): the stage waits."""
    if job is None or job.active:
        message += job.waiting_note(p.spec.queue_name) if job else ""
        if job is not None:
            message = _watch_start(p, job, message, condition_type, phase)
            message = _restart_for_placement(p.out, job, job_name, p.spec, message)
        return Stop(phase, message)
    if job.succeeded and job.report is None and not job.failure_reason:
        return Stop(report_phase, f"{p.version}: waiting for the stage report of {job_name}")
    return None


def _fail(p: Pass, decision: policy.Fail, metrics: dict | None) -> Transition:
    version = p.version
    p.run.update(reason=decision.reason, message=f"{version}: {decision.message}")
    p.record(version, outcome="Failed", finishedAt=p.now, message=f"{decision.reason}: {decision.message}",
             metrics=metrics or None)
    p.event("Warning", decision.reason, f"{version}: {decision.message}")
    return Next("failed")


# --- serving: runs whatever the pipeline is doing, so the current version serves while a new one trains

def _serve(p: Pass) -> str | None:
    """Keep the serving objects on the version that should serve; returns that version (None: none yet)."""
    target, servable = _serving_target(p.spec, p.run, p.history, p.served)
    if p.spec.pinned_version and target is None:
        unknown = (f"serving.modelVersion {p.spec.pinned_version} was never deployed; known: "
                   + (", ".join(h["version"] for h in p.history if h.get("servable")) or "none"))
        if p.changed("Ready", unknown):   # on change, not every pass
            p.event("Warning", "UnknownVersion", f"serving.modelVersion {p.spec.pinned_version} was never deployed")
        p.condition("Ready", False, "UnknownVersion", unknown)
    if target is None:
        return None
    spec, deployment = p.spec, p.observed.deployment
    stored = p.run if p.run["version"] == target else p.entry(target)
    wanted, unwanted = b.build_serving_objects(spec, p.owner, p.images, target, servable,
                                               stored_under_uid(p.owner, stored))
    p.out.apply.extend(wanted)
    if spec.autoscaling and deployment is not None and deployment.replicas_applied_by_us:
        # Applying without spec.replicas would drop it to the default of 1 before the HPA acts:
        # the documented hand-over keeps the current count under another manager first.
        p.out.handover.append(b.build_replicas_handover(p.owner, deployment.desired))
    # An HPA or PDB becomes unwanted only through a spec change (seen by this pass, or made while
    # the operator was down): deleting on every pass would cost two requests each time for nothing.
    if p.generation != (p.body.get("status") or {}).get("observedGeneration"):
        p.out.delete.extend(unwanted)
    _watch_rollout(p, target, servable)
    return target


def _watch_rollout(p: Pass, target: str, servable: str) -> None:
    deployment = p.observed.deployment
    if deployment is None or deployment.version != target or not deployment.rolled_out:
        message = f"rolling out {target}"
        if deployment is not None and deployment.version == target:
            message += f" ({deployment.updated}/{deployment.desired} updated, {deployment.available} available)"
            message = _watch_serving_pods(p, deployment, message)
        else:
            p.condition("Deployed", False, "RollingOut", message)
        if p.run["stage"] in ("serve", "done") or p.spec.pinned_version:
            p.phase, p.message = "Deploying", message
        return
    if p.served != target:
        p.event("Normal", "Deployed", f"{target} is serving ({deployment.ready_text} replicas ready)")
    p.served = target
    p.condition("Deployed", True, "RolledOut", f"{target} rolled out")
    if p.run["stage"] == "serve" and p.run["version"] == target:
        p.run["stage"] = "done"
        p.record(target, outcome="Deployed", deployedAt=p.now, finishedAt=p.now, servable=servable)
        for h in p.history:
            if h.get("outcome") == "Deployed" and h["version"] != target:
                h["outcome"] = "Superseded"


def _summarise(p: Pass, target: str | None) -> None:
    """The phase of a run the stages left alone: done, passed but held by a pin, or failed."""
    stage, served = p.run["stage"], p.served
    if stage == "done" and p.phase == "Pending":
        p.phase, p.message = "Ready", f"{served or p.version} is serving"
    if stage == "serve" and target and target != p.version and p.phase == "Pending":
        p.phase, p.message = "Ready", (f"{served or target} is serving, pinned by serving.modelVersion; {p.version} "
                                       "passed and rolls out once the pin is removed or set to it")
    if stage == "failed":
        p.phase = "Failed"
        p.message = p.run.get("message", "") + (f"; still serving {served}" if served else "")


def _keep_off_foreign(p: Pass) -> None:
    # One condition per type names all its foreign objects, so a Warning comes only when that set changes.
    by_condition: dict[str, list[str]] = {}
    for way in _make_way(p.out, p.observed.in_the_way):
        by_condition.setdefault(CONDITION_OF_COMPONENT.get(way.component, "Ready"), []).append(way.message)
    for type_, messages in by_condition.items():
        message = "; ".join(sorted(messages))
        if p.changed(type_, message):
            p.event("Warning", "NameConflict", message)
        p.condition(type_, False, "NameConflict", message)
        if p.phase != "Failed":
            p.message = message


def _judge_ready(p: Pass, target: str | None) -> None:
    """Ready means the rollout is complete, as `kubectl rollout status` judges it: not one replica of two."""
    served, deployment, pinned = p.served, p.observed.deployment, p.spec.pinned_version
    complete = (bool(served) and deployment is not None and deployment.version == served and deployment.rolled_out
                and deployment.desired > 0)
    is_ready = complete and (not pinned or served == pinned)
    if not (pinned and target is None):
        p.condition("Ready", is_ready, "Serving" if is_ready else "NotServing",
                    f"{served} serving, {deployment.ready_text} replicas ready" if is_ready
                    else _not_ready_message(served, target, deployment))
    if p.phase == "Ready" and not is_ready:
        p.phase, p.message = "Deploying", f"waiting for ready replicas of {served}"


def _write_status(p: Pass) -> None:
    status, deployment, served = p.status, p.observed.deployment, p.served
    status.update(
        phase=p.phase, message=p.message, observedGeneration=p.generation, latestVersion=p.version,
        attempts=p.run["attempt"], pipeline=p.run, conditions=p.conditions, history=p.history,
        replicas=deployment.replicas if deployment else 0, readyReplicas=deployment.ready if deployment else 0,
        ready=deployment.ready_text if deployment else "0/0",
        selector=b.serving_label_selector(p.owner),
    )
    if served:
        status["modelVersion"] = served
        status["metrics"] = dict(p.entry(served).get("metrics") or {})
        value = status["metrics"].get(p.spec.metric)
        status["metricSummary"] = f"{p.spec.metric}={value:.4g}" if value is not None else ""
        status["endpoint"] = b.endpoint(p.owner, p.images.cluster_domain)
    if status.get("phase") != (p.body.get("status") or {}).get("phase"):
        p.event("Normal" if p.phase != "Failed" else "Warning", f"Phase{p.phase}", p.message or p.phase)
    p.out.status = status


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


def _watch_start(p: Pass, job: JobState, message: str, condition_type: str, normal_reason: str) -> str:
    """An active stage Job: say why its pods do not start (once per new reason), and look again soon."""
    if job.starting:
        p.out.recheck_after_s = RECHECK_STARTING_S
    before = (get_condition(p.before, condition_type) or {}).get("reason")
    if job.stuck is None:
        if before not in (None, normal_reason, "Training", "Retraining", "Compressing"):
            p.condition(condition_type, False, normal_reason, message)   # the earlier trouble has cleared
        return message
    message = f"{message}: not running: {job.stuck.message}"
    p.condition(condition_type, False, job.stuck.reason, message)
    if before != job.stuck.reason:
        p.event("Warning", job.stuck.reason, message)
    return message


def _watch_serving_pods(p: Pass, deployment: DeploymentState, message: str) -> str:
    """A rollout in progress: say why its pods do not start (once per new reason), and look again soon.

    Pods are not watched, and a pod stuck pulling its image changes nothing on the Deployment.
    """
    p.out.recheck_after_s = RECHECK_STARTING_S
    if deployment.stuck is None:
        p.condition("Deployed", False, "RollingOut", message)
        return message
    message = f"{message}: not running: {deployment.stuck.message}"
    if (get_condition(p.before, "Deployed") or {}).get("reason") != deployment.stuck.reason:
        p.event("Warning", deployment.stuck.reason, message)
    p.condition("Deployed", False, deployment.stuck.reason, message)
    return message


def _not_ready_message(served: str | None, target: str | None, deployment: DeploymentState | None) -> str:
    if deployment is None or not (served or target):
        return "no ready serving replica yet"
    if deployment.desired == 0:
        return f"{served or target} is scaled to 0 replicas"
    return (f"rolling out {deployment.version}: {deployment.updated}/{deployment.desired} updated, "
            f"{deployment.available} available, {deployment.ready_text} ready"
            + (f": not running: {deployment.stuck.message}" if deployment.stuck else ""))


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
