"""The ModelDeployment spec as the operator reads it.

The CRD (crds/) is the source of truth for the schema. This module reads the fields the
operator uses through the FIELDS table, whose paths and defaults a unit test checks against
the CRD, and re-checks the CRD's cross-field rules so that `modelops run` (no API server)
refuses what the API server would refuse, with the same field names in its messages.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from modelops_contracts.jobconfig import HIGHER_IS_BETTER

from .dotted import lookup
from .rollout import Rollout, parse_rollout

CLASSIFICATION_METRICS = ("accuracy", "auc", "logloss")
REGRESSION_METRICS = ("mse", "mae", "r2")

# attribute -> (path under spec, default as in the CRD schema or None when it has none)
FIELDS: dict[str, tuple[str, Any]] = {
    "template": ("model.template", None),
    "custom_module": ("model.customModule", None),
    "model_params": ("model.params", None),
    "data_uri": ("data.uri", None),
    "target": ("data.target", None),
    "features": ("data.features", None),
    "validation_split": ("data.validationSplit", 0.2),
    "shuffle_seed": ("data.shuffleSeed", 42),
    "s3_endpoint": ("data.s3Endpoint", None),
    "feature_spec": ("data.featureSpec", None),
    "training_image": ("training.image", None),
    "strategy": ("training.strategy.type", "OneDevice"),
    "workers": ("training.strategy.workers", 1),
    "gpus_per_worker": ("training.strategy.gpusPerWorker", 0),
    "epochs": ("training.hyperparameters.epochs", 10),
    "batch_size": ("training.hyperparameters.batchSize", 32),
    "learning_rate": ("training.hyperparameters.learningRate", 0.001),
    "training_resources": ("training.resources", None),
    "node_selector": ("training.nodeSelector", None),
    "tolerations": ("training.tolerations", None),
    "affinity": ("training.affinity", None),
    "priority_class_name": ("training.priorityClassName", None),
    "pod_annotations": ("training.podAnnotations", None),
    "backoff_limit": ("training.backoffLimit", 2),
    "active_deadline_seconds": ("training.activeDeadlineSeconds", None),
    "precision": ("training.precision", "float32"),
    "jit_compile": ("training.jitCompile", False),
    "startup_timeout_seconds": ("training.startupTimeoutSeconds", None),
    "queue_name": ("training.queueName", None),
    "training_service_account": ("training.serviceAccountName", None),
    "training_env": ("training.env", None),
    "training_env_from": ("training.envFrom", None),
    "metric": ("evaluation.metric", None),
    "threshold_min": ("evaluation.threshold.min", None),
    "threshold_max": ("evaluation.threshold.max", None),
    "max_retrains": ("evaluation.maxRetrains", 2),
    "compression_method": ("compression.method", "dynamic-range"),
    "pruning_enabled": ("compression.pruning.enabled", False),
    "pruning_sparsity": ("compression.pruning.targetSparsity", 0.5),
    "max_degradation": ("compression.maxDegradation", 0.01),
    "on_degradation": ("compression.onDegradation", "ServeUncompressed"),
    "serving_image": ("serving.image", None),
    "replicas": ("serving.replicas", 1),
    "autoscaling_min": ("serving.autoscaling.minReplicas", 1),
    "autoscaling_max": ("serving.autoscaling.maxReplicas", None),
    "autoscaling_cpu": ("serving.autoscaling.targetCPUUtilization", 70),
    "max_batch_size": ("serving.batching.maxBatchSize", 256),
    "max_latency_ms": ("serving.batching.maxLatencyMs", 5),
    "serving_resources": ("serving.resources", None),
    "pinned_version": ("serving.modelVersion", None),
    "serving_service_account": ("serving.serviceAccountName", None),
    "serving_env": ("serving.env", None),
    "serving_env_from": ("serving.envFrom", None),
    "monitoring_enabled": ("monitoring.enabled", False),
    "monitoring_period_s": ("monitoring.periodSeconds", 60),
    "monitoring_min_pairs": ("monitoring.minPairs", 200),
    "monitoring_threshold_min": ("monitoring.threshold.min", None),
    "monitoring_threshold_max": ("monitoring.threshold.max", None),
    "monitoring_drift_bound": ("monitoring.driftBound", None),
    "monitoring_cooldown_s": ("monitoring.cooldownSeconds", 3600),
    "monitoring_max_retrains": ("monitoring.maxRetrainsPerWindow", 3),
    "monitoring_window_s": ("monitoring.windowSeconds", 86400),
    "on_quality_drop": ("monitoring.onQualityDrop", "Retrain"),
    "feedback_max_share": ("monitoring.feedbackMaxShare", 0.2),
    "storage_uri": ("storage.uri", None),
    "delete_artifacts": ("storage.deleteOnModelDeletion", False),
    "pod_security_context": ("podSecurityContext", None),
    "image_pull_secrets": ("imagePullSecrets", None),
}
# Environment variables the operator sets on its pods; a user's env must not shadow them.
RESERVED_ENV = ("HOME", "TF_CONFIG", "JOB_COMPLETION_INDEX")
# Where an env entry's valueFrom may point (a container spec takes exactly one).
ENV_VALUE_SOURCES = ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef")
REQUIRED = ("template", "data_uri", "metric", "storage_uri")
# What makes a new model version: what is trained on what, how, and how it is judged and
# compressed, read with defaults applied. Placement (resources, nodeSelector, tolerations,
# affinity, priorityClassName, podAnnotations, backoffLimit, activeDeadlineSeconds) changes no
# model, and a CRD upgrade that adds a default changes no parsed value.
VERSION_FIELDS = ("template", "custom_module", "model_params", "data_uri", "target", "features", "feature_spec",
                  "validation_split", "shuffle_seed", "s3_endpoint", "training_image", "strategy", "workers", "gpus_per_worker", "epochs",
                  "batch_size", "learning_rate", "precision", "jit_compile", "metric", "threshold_min", "threshold_max", "max_retrains",
                  "compression_method", "pruning_enabled", "pruning_sparsity", "max_degradation", "on_degradation")
FLOAT_FIELDS = ("validation_split", "learning_rate", "threshold_min", "threshold_max", "pruning_sparsity",
                "max_degradation")
# Where and how a stage's pods run: a change makes no new version, but restarts a stage Job still running
# (its pod template is immutable), so a quota's refusal or an unschedulable pod can be fixed in the spec.
PLACEMENT_FIELDS = ("training_resources", "node_selector", "tolerations", "affinity", "priority_class_name",
                    "pod_annotations", "backoff_limit", "active_deadline_seconds", "pod_security_context",
                    "startup_timeout_seconds", "queue_name", "training_service_account", "training_env",
                    "training_env_from", "image_pull_secrets")
# The sections the hash covered before VERSION_FIELDS: a run recorded under it is not a new version.
LEGACY_VERSION_SECTIONS = ("model", "data", "training", "evaluation", "compression")
# Fields those sections gained since, with the default the API server now fills into every stored object:
# the legacy hash leaves them out at that default, as the operator that recorded it never saw them.
LEGACY_ADDED_DEFAULTS = {("training", "precision"): "float32", ("training", "jitCompile"): False}


class SpecError(ValueError):
    """A spec the API server would refuse; the message starts with the offending field's path."""


@dataclass(frozen=True)
class Spec:
    template: str
    custom_module: str | None
    model_params: dict | None
    data_uri: str
    target: str | None
    features: list | None
    validation_split: float
    shuffle_seed: int
    s3_endpoint: str | None
    feature_spec: dict | None
    training_image: str | None
    strategy: str
    workers: int
    gpus_per_worker: int
    epochs: int
    batch_size: int
    learning_rate: float
    training_resources: dict | None
    node_selector: dict | None
    tolerations: list | None
    affinity: dict | None
    priority_class_name: str | None
    pod_annotations: dict | None
    backoff_limit: int
    active_deadline_seconds: int | None
    precision: str
    jit_compile: bool
    startup_timeout_seconds: int | None
    queue_name: str | None
    training_service_account: str | None
    training_env: list | None
    training_env_from: list | None
    metric: str
    threshold_min: float | None
    threshold_max: float | None
    max_retrains: int
    compression_method: str
    pruning_enabled: bool
    pruning_sparsity: float
    max_degradation: float
    on_degradation: str
    serving_image: str | None
    replicas: int
    autoscaling_min: int
    autoscaling_max: int | None
    autoscaling_cpu: int
    max_batch_size: int
    max_latency_ms: int
    serving_resources: dict | None
    pinned_version: str | None
    serving_service_account: str | None
    serving_env: list | None
    serving_env_from: list | None
    monitoring_enabled: bool
    monitoring_period_s: int
    monitoring_min_pairs: int
    monitoring_threshold_min: float | None
    monitoring_threshold_max: float | None
    monitoring_drift_bound: float | None
    monitoring_cooldown_s: int
    monitoring_max_retrains: int
    monitoring_window_s: int
    on_quality_drop: str
    feedback_max_share: float
    storage_uri: str
    delete_artifacts: bool
    pod_security_context: dict | None
    image_pull_secrets: list | None
    # Hash of VERSION_FIELDS: a new hash means a new model version.
    version_hash: str
    # The hash as operators before it computed it (raw sections), so an upgrade starts no version.
    legacy_version_hash: str
    # serving.rollout: its own table and bounds (rollout.py); a serving field, so in no hash.
    rollout: Rollout = Rollout()

    @property
    def autoscaling(self) -> bool:
        return self.autoscaling_max is not None

    @property
    def placement_hash(self) -> str:
        return digest({k: getattr(self, k) for k in PLACEMENT_FIELDS})

    @property
    def task(self) -> str:
        return "classification" if self.metric in CLASSIFICATION_METRICS else "regression"

    @property
    def storage_claim(self) -> str:
        return self.storage_uri[len("pvc://"):].split("/", 1)[0]

    @property
    def storage_subpath(self) -> str:
        parts = self.storage_uri[len("pvc://"):].split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""

    def passes(self, value: float) -> bool:
        """Whether a metric value meets the evaluation threshold."""
        if self.threshold_min is not None:
            return value >= self.threshold_min
        return value <= self.threshold_max

    @property
    def threshold_text(self) -> str:
        return f">= {self.threshold_min}" if self.threshold_min is not None else f"<= {self.threshold_max}"


def digest(value: Any) -> str:
    """A short, stable hash of a JSON value (key order ignored)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def version_hash(values: Mapping[str, Any]) -> str:
    """Hash of the parsed values that define a model (numbers canonical: 1 and 1.0 are one value).

    A field at its default is left out, so a field added later (with a default) changes no existing hash.
    """
    canonical = {}
    for k in VERSION_FIELDS:
        value = values[k]
        if k in FLOAT_FIELDS and value is not None:
            value = float(value)
        if k == "pruning_sparsity" and not values["pruning_enabled"]:
            value = None
        if value != FIELDS[k][1]:
            canonical[k] = value
    return digest(canonical)


def legacy_version_hash(spec: Mapping[str, Any]) -> str:
    sections = {k: spec.get(k) for k in LEGACY_VERSION_SECTIONS}
    for (section, field), default in LEGACY_ADDED_DEFAULTS.items():
        if isinstance(sections[section], Mapping) and sections[section].get(field, default) == default:
            sections[section] = {k: v for k, v in sections[section].items() if k != field}
    return digest(sections)


def parse(spec: Mapping[str, Any]) -> Spec:
    """Read a ModelDeployment spec (defaulted or not) into a Spec, refusing what the CRD refuses."""
    if not isinstance(spec, Mapping):
        raise SpecError("spec: required")
    values: dict[str, Any] = {}
    for attr, (path, default) in FIELDS.items():
        value = lookup(spec, path)
        values[attr] = default if value is None else value
    for attr in REQUIRED:
        if values[attr] in (None, ""):
            raise SpecError(f"spec.{FIELDS[attr][0]}: required")
    if isinstance(values["model_params"], Mapping):
        values["model_params"] = dict(values["model_params"])
    if isinstance(values["feature_spec"], Mapping):
        values["feature_spec"] = json.loads(json.dumps(values["feature_spec"]))   # plain dicts for the job config
    try:
        rollout = parse_rollout(lookup(spec, "serving"))
    except ValueError as e:
        raise SpecError(str(e)) from None
    parsed = Spec(**values, version_hash=version_hash(values), legacy_version_hash=legacy_version_hash(spec),
                  rollout=rollout)
    _check_cross_field_rules(parsed, spec)
    return parsed


def _check_cross_field_rules(s: Spec, raw: Mapping[str, Any]) -> None:
    """The CRD's x-kubernetes-validations, in the same words (a unit test keeps them aligned)."""
    def fail(path: str, message: str) -> None:
        raise SpecError(f"spec.{path}: {message}")

    if s.template == "mlp-classifier" and s.metric not in CLASSIFICATION_METRICS:
        fail("evaluation.metric", "evaluation.metric must be a classification metric (accuracy, auc, logloss) "
                                  "for template mlp-classifier")
    if s.template == "cnn-classifier" and s.metric not in CLASSIFICATION_METRICS:
        fail("evaluation.metric", "evaluation.metric must be a classification metric (accuracy, auc, logloss) "
                                  "for template cnn-classifier")
    if s.template in ("linear-regression", "mlp-regressor") and s.metric not in REGRESSION_METRICS:
        fail("evaluation.metric", "evaluation.metric must be a regression metric (mse, mae, r2) for a regression template")
    if s.template != "custom" and not s.data_uri.startswith("builtin:") and not s.target:
        fail("data", "data.target is required unless the data is a bundled builtin: dataset or the template is custom")
    if (s.threshold_min is None) == (s.threshold_max is None):
        fail("evaluation.threshold", "exactly one of evaluation.threshold.min and evaluation.threshold.max must be set")
    if s.metric in HIGHER_IS_BETTER and s.threshold_min is None:
        fail("evaluation.threshold", "evaluation.threshold.min must be used with a higher-is-better metric (r2, accuracy, auc)")
    if s.metric not in HIGHER_IS_BETTER and s.threshold_max is None:
        fail("evaluation.threshold", "evaluation.threshold.max must be used with a lower-is-better metric (mse, mae, logloss)")
    _check_monitoring_rules(s, raw)
    if s.template == "custom" and not s.custom_module:
        fail("model.customModule", "model.customModule is required when model.template is custom")
    if s.custom_module and s.template != "custom":
        fail("model.customModule", "model.customModule is only allowed when model.template is custom")
    if s.workers > 1 and s.strategy != "MultiWorkerMirrored":
        fail("training.strategy.workers", "strategy.workers greater than 1 requires strategy.type MultiWorkerMirrored")
    if s.strategy == "OneDevice" and s.gpus_per_worker > 1:
        fail("training.strategy.gpusPerWorker", "strategy.gpusPerWorker above 1 requires Mirrored or "
                                                "MultiWorkerMirrored (OneDevice uses one device)")
    for section, env in (("training", s.training_env), ("serving", s.serving_env)):
        if any(str(e.get("name", "")).startswith("MODELOPS_") or e.get("name") in RESERVED_ENV for e in env or []):
            fail(f"{section}.env", "env: MODELOPS_*, HOME, TF_CONFIG and JOB_COMPLETION_INDEX are set by the operator")
    _check_env_sources(s)
    if "" in (s.node_selector or {}):
        fail("training.nodeSelector", "training.nodeSelector: a node label name must not be empty")
    if "" in (s.pod_annotations or {}):
        fail("training.podAnnotations", "training.podAnnotations: an annotation name must not be empty")
    if "" in (s.feature_spec or {}):
        fail("data.featureSpec", "data.featureSpec: a feature name must not be empty")
    if s.precision == "mixed_float16" and not s.gpus_per_worker:
        fail("training.precision", "training.precision mixed_float16 needs GPUs (strategy.gpusPerWorker above 0): "
                                   "on CPUs float16 math is emulated and slower than float32")
    if s.compression_method == "none" and s.pruning_enabled:
        fail("compression.pruning.enabled", "compression.pruning requires a compression.method other than none")
    if lookup(raw, "serving.autoscaling") is not None and s.autoscaling_max is None:
        fail("serving.autoscaling.maxReplicas", "Required value")
    if s.autoscaling and s.autoscaling_min > s.autoscaling_max:
        fail("serving.autoscaling.minReplicas", "serving.autoscaling.minReplicas must not exceed "
                                                "serving.autoscaling.maxReplicas")
    if s.autoscaling and "cpu" not in ((s.serving_resources or {}).get("requests") or {}):
        fail("serving.resources.requests.cpu", "serving.resources.requests.cpu is required with serving.autoscaling "
                                               "(the autoscaler scales on CPU use as a share of the request)")


def _check_monitoring_rules(s: Spec, raw: Mapping[str, Any]) -> None:
    """spec.monitoring's threshold: one bound, in the evaluation metric's direction (it judges that metric)."""
    def fail(message: str) -> None:
        raise SpecError(f"spec.monitoring.threshold: {message}")

    if (lookup(raw, "monitoring.threshold") is not None
            and (s.monitoring_threshold_min is None) == (s.monitoring_threshold_max is None)):
        fail("exactly one of monitoring.threshold.min and monitoring.threshold.max must be set")
    if s.monitoring_threshold_min is not None and s.metric not in HIGHER_IS_BETTER:
        fail("monitoring.threshold.min must be used with a higher-is-better metric (r2, accuracy, auc)")
    if s.monitoring_threshold_max is not None and s.metric in HIGHER_IS_BETTER:
        fail("monitoring.threshold.max must be used with a lower-is-better metric (mse, mae, logloss)")


def _check_env_sources(s: Spec) -> None:
    """Each env entry has one value, and each valueFrom and envFrom entry names exactly one source: Kubernetes
    would refuse the pod."""
    for section, env, env_from in (("training", s.training_env, s.training_env_from),
                                   ("serving", s.serving_env, s.serving_env_from)):
        for i, entry in enumerate(env or []):
            value_from = entry.get("valueFrom")
            if value_from is not None and "value" in entry:
                raise SpecError(f"spec.{section}.env[{i}]: env: give value or valueFrom, not both")
            if value_from is not None and sum(k in value_from for k in ENV_VALUE_SOURCES) != 1:
                raise SpecError(f"spec.{section}.env[{i}].valueFrom: env: valueFrom takes exactly one of "
                                "secretKeyRef, configMapKeyRef, fieldRef and resourceFieldRef")
        for i, source in enumerate(env_from or []):
            if ("secretRef" in source) == ("configMapRef" in source):
                raise SpecError(f"spec.{section}.envFrom[{i}]: envFrom: each entry takes exactly one of "
                                "secretRef and configMapRef")
