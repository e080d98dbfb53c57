"""The pipeline policy: given what a stage produced, what happens next.

Pure functions shared by the operator and by `modelops run` (one machine, no cluster), so
the evaluation gate and the retrain and compression rules cannot drift between the two.
"""
from __future__ import annotations

from dataclasses import dataclass

from modelops_contracts.jobconfig import HIGHER_IS_BETTER
from modelops_contracts.report import PERMANENT_REASONS, StageReport

from .spec import Spec

# A report that breaks the contract (a NaN metric) comes from a trainer the next attempt runs too; the same
# memory limit runs out again (its fix is the user's, and it retries the version: pipeline.RETRIED_WHEN).
GIVE_UP_REASONS = PERMANENT_REASONS | {"InvalidReport", "OOMKilled"}
HINTS = {"OOMKilled": "; raise spec.training.resources.limits.memory (or lower training.batchSize) to retry"}


@dataclass(frozen=True)
class Retrain:
    attempt: int
    reason: str
    message: str


@dataclass(frozen=True)
class Compress:
    message: str


# The uncompressed model as the serving image can load it: the float32 TFLite model compression writes
# first. (A SavedModel would need TensorFlow, which the serving image does not have.)
UNCOMPRESSED = "tfliteFloat32"


@dataclass(frozen=True)
class Serve:
    servable: str          # "tflite" (compressed) or UNCOMPRESSED
    reason: str
    message: str


@dataclass(frozen=True)
class Fail:
    reason: str
    message: str


Decision = Retrain | Compress | Serve | Fail


def _retrain_or_fail(spec: Spec, attempt: int, reason: str, message: str) -> Retrain | Fail:
    if attempt <= spec.max_retrains:
        return Retrain(attempt=attempt + 1, reason=reason,
                       message=f"{message}; retraining (attempt {attempt + 1} of {spec.max_retrains + 1})")
    return Fail(reason=reason if reason != "ThresholdNotMet" else "RetrainsExhausted",
                message=f"{message}; no retrains left ({spec.max_retrains} allowed)")


def after_training(spec: Spec, attempt: int, report: StageReport | None,
                   failure_reason: str | None = None, failure_message: str | None = None) -> Decision:
    """The evaluation gate.

    `report` is the chief's stage report; when the Job failed without a usable report,
    `failure_reason`/`failure_message` say what Kubernetes observed (exit code, OOMKilled, ...).
    """
    if report is None or not report.succeeded:
        reason = (report.reason if report else None) or failure_reason or "TrainingFailed"
        message = (report.message if report else None) or failure_message or "training failed"
        if reason in GIVE_UP_REASONS:
            return Fail(reason=reason, message=f"attempt {attempt}: {message}{HINTS.get(reason, '')}")
        return _retrain_or_fail(spec, attempt, reason, f"attempt {attempt} failed: {message}")
    value = report.metrics.get(spec.metric)
    if value is None:
        return Fail(reason="MetricMissing",
                    message=f"the training report has no {spec.metric} (it has {', '.join(report.metrics) or 'none'})")
    if spec.passes(value):
        return Compress(message=f"{spec.metric}={value:.4g} meets the threshold {spec.threshold_text}")
    return _retrain_or_fail(spec, attempt, "ThresholdNotMet",
                            f"attempt {attempt}: {spec.metric}={value:.4g} does not meet the threshold "
                            f"{spec.threshold_text}")


def degradation(metric: str, before: float, after: float) -> float:
    """How much worse `after` is than `before`, in the metric's units (negative: it improved)."""
    return before - after if metric in HIGHER_IS_BETTER else after - before


def after_compression(spec: Spec, report: StageReport | None, trained_value: float,
                      failure_message: str | None = None) -> Decision:
    """Serve the compressed model, fall back to the uncompressed one, or fail, per spec.compression."""
    if report is None or not report.succeeded:
        message = (report.message if report else None) or failure_message or "compression failed"
        if spec.on_degradation == "Fail":
            return Fail(reason="CompressionFailed", message=message)
        if not (report and report.compression.get("float32File")):
            return Fail(reason="CompressionFailed",
                        message=f"{message}; no float32 TFLite model was written, so there is nothing to serve")
        return Serve(servable=UNCOMPRESSED, reason="CompressionFailed",
                     message=f"{message}; serving the uncompressed (float32 TFLite) model")
    value = report.metrics.get(spec.metric)
    if value is None:
        return Fail(reason="MetricMissing", message=f"the compression report has no {spec.metric}")
    lost = degradation(spec.metric, trained_value, value)
    summary = (f"{spec.compression_method}: {spec.metric} {trained_value:.4g} -> {value:.4g} "
               f"(degradation {lost:.4g}, tolerance {spec.max_degradation:.4g})")
    if lost <= spec.max_degradation:
        return Serve(servable="tflite", reason="Compressed", message=summary)
    if spec.on_degradation == "Fail":
        return Fail(reason="DegradationExceeded", message=summary)
    return Serve(servable=UNCOMPRESSED, reason="DegradationExceeded",
                 message=f"{summary}; serving the uncompressed (float32 TFLite) model")
