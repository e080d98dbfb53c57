"""The stage report: what a finished training or compression pod tells the operator.

It travels as the container's termination message, which Kubernetes caps at 4096 bytes,
so `encode` guarantees the size by shortening the free-text error message, never the
numbers the operator decides on.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import API_VERSION

KIND = "StageReport"
MAX_BYTES = 4096

# Exit codes are part of the contract: the operator maps them to reasons when a pod
# died before it could write its report.
EXIT_OK = 0
EXIT_BAD_CONFIG = 2
EXIT_BAD_DATA = 3
EXIT_TRAINING_FAILED = 4
EXIT_STORAGE_ERROR = 5
EXIT_COMPRESSION_FAILED = 6
EXIT_WORKERS_NOT_STARTED = 7
EXIT_GPU_UNAVAILABLE = 8
# 128 + SIGTERM, what a shell reports for a process the signal ended: the pod was deleted or evicted.
EXIT_TERMINATED = 143
REASON_BY_EXIT_CODE = {
    EXIT_BAD_CONFIG: "BadConfig",
    EXIT_BAD_DATA: "BadData",
    EXIT_TRAINING_FAILED: "TrainingFailed",
    EXIT_STORAGE_ERROR: "StorageError",
    EXIT_COMPRESSION_FAILED: "CompressionFailed",
    EXIT_TERMINATED: "Terminated",
    EXIT_WORKERS_NOT_STARTED: "WorkersNotStarted",
    EXIT_GPU_UNAVAILABLE: "GPUUnavailable",
}
EXIT_CODE_BY_REASON = {reason: code for code, reason in REASON_BY_EXIT_CODE.items()}
# Failures that another attempt cannot fix: the same config, data, storage and image fail the same way (an
# image without CUDA sees no GPU on any node). The operator gives up on them at once (its policy, and the
# Jobs' podFailurePolicy on their exit codes).
PERMANENT_REASONS = frozenset({"BadConfig", "BadData", "StorageError", "GPUUnavailable"})
PERMANENT_EXIT_CODES = tuple(sorted(EXIT_CODE_BY_REASON[r] for r in PERMANENT_REASONS))


class ReportError(ValueError):
    """A termination message that is not a valid stage report."""


@dataclass(frozen=True)
class StageReport:
    stage: str                      # "train" | "compress"
    succeeded: bool
    version: str
    attempt: int = 1
    metric: str | None = None       # the evaluation metric's name
    metrics: dict[str, float] = field(default_factory=dict)
    artifact_path: str | None = None
    # Compression: original/compressed size in bytes, ratio, metric before/after, degradation.
    compression: dict[str, Any] = field(default_factory=dict)
    # Training: what really ran (devices, precision, XLA, threads), as opposed to what was asked for.
    training: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None       # CamelCase, one of REASON_BY_EXIT_CODE's values on failure
    message: str | None = None      # one line for people
    duration_seconds: float | None = None

    @property
    def metric_value(self) -> float | None:
        return self.metrics.get(self.metric) if self.metric else None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.succeeded else EXIT_CODE_BY_REASON.get(self.reason or "", 1)

    def to_dict(self) -> dict[str, Any]:
        d = {"apiVersion": API_VERSION, "kind": KIND, "stage": self.stage,
             "status": "Succeeded" if self.succeeded else "Failed", "version": self.version,
             "attempt": self.attempt, "metric": self.metric, "metrics": self.metrics,
             "artifactPath": self.artifact_path, "compression": self.compression, "training": self.training,
             "reason": self.reason, "message": self.message, "durationSeconds": self.duration_seconds}
        return {k: v for k, v in d.items() if v not in (None, {}, "")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StageReport":
        if not isinstance(d, Mapping) or d.get("kind") != KIND:
            raise ReportError("not a StageReport")
        status = d.get("status")
        if status not in ("Succeeded", "Failed"):
            raise ReportError(f"status: {status!r} is not Succeeded or Failed")
        metrics = _finite_numbers(d.get("metrics") or {}, "metrics")
        compression = dict(d.get("compression") or {})
        _finite_numbers({k: v for k, v in compression.items() if isinstance(v, float)}, "compression")
        return cls(stage=str(d.get("stage")), succeeded=status == "Succeeded", version=str(d.get("version") or ""),
                   attempt=int(d.get("attempt", 1)), metric=d.get("metric"), metrics=metrics,
                   artifact_path=d.get("artifactPath"), compression=compression,
                   training=dict(d.get("training") or {}),
                   reason=d.get("reason"), message=d.get("message"), duration_seconds=d.get("durationSeconds"))


def _finite_numbers(values: Mapping[str, Any], where: str) -> dict[str, float]:
    """Numbers the operator decides on and writes into status: NaN and infinity are neither JSON
    (the API server refuses a status holding one) nor comparable with a threshold."""
    if not isinstance(values, Mapping):
        raise ReportError(f"{where}: expected an object")
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ReportError(f"{where}.{key}: {value!r} is not a number")
        if not math.isfinite(value):
            raise ReportError(f"{where}.{key}: {value} is not a finite number")
        out[str(key)] = float(value)
    return out


def encode(report: StageReport) -> str:
    """Compact JSON of at most MAX_BYTES bytes (the message is shortened if it must be).

    Refuses non-finite numbers (ReportError naming the field) rather than writing a bare NaN.
    """
    d = report.to_dict()
    _finite_numbers(d.get("metrics") or {}, "metrics")
    _finite_numbers({k: v for k, v in (d.get("compression") or {}).items() if isinstance(v, float)}, "compression")
    text = json.dumps(d, separators=(",", ":"), sort_keys=True)
    while len(text.encode()) > MAX_BYTES:
        message = d.get("message") or ""
        if not message:
            raise ReportError(f"report is {len(text.encode())} bytes without a message; the limit is {MAX_BYTES}")
        excess = len(text.encode()) - MAX_BYTES
        d["message"] = message[: max(0, len(message) - excess - 4)] + "…"
        if d["message"] == "…":
            del d["message"]
        text = json.dumps(d, separators=(",", ":"), sort_keys=True)
    return text


def decode(text: str) -> StageReport:
    """Parse a termination message; raises ReportError when it is not a report."""
    try:
        return StageReport.from_dict(json.loads(text))
    except json.JSONDecodeError as e:
        raise ReportError(f"not JSON: {e.msg}") from None


def write(report: StageReport, path: str | Path) -> str:
    """Write the report where Kubernetes reads termination messages; returns the encoded text.

    A report path that cannot be written (e.g. running outside a pod) is not fatal: the
    report is printed to stdout by the caller either way.
    """
    text = encode(report)
    try:
        Path(path).write_text(text)
    except OSError:
        pass
    return text

