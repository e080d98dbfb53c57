"""Live figures: what one serving replica measured over its recent window, and their sum over replicas.

The server answers `GET /v1/live` with `LiveFigures.to_dict()`; the operator reads every ready replica
(through the API server's pod proxy), parses each with `from_dict` and folds the replicas of one version
with `aggregate`. Both sides go through this module, so a figure cannot exist on one side only.

The metric is the evaluation metric (`jobconfig.METRICS`) computed over the window's labeled pairs, or
`accuracy` / `mae` where the server cannot compute the evaluation metric from point predictions;
`value` is None while the window holds no pair. `drift` maps each input feature to its population
stability index (PSI) of the window's inputs against the training data's reference bins (manifest
`reference`); `driftScore` is the largest of them. A version whose manifest has no reference reports an
empty `drift`, `driftScore` None and says why in `driftReason`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

KIND = "LiveFigures"


class LiveError(ValueError):
    """Figures that are malformed; the message names the field."""


def _finite(value: Any, where: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LiveError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LiveError(f"{where}: expected a count (an integer >= 0), got {value!r}")
    return value


@dataclass(frozen=True)
class LiveFigures:
    version: str
    replica: str                        # the pod's name (aggregate: the replicas' names, comma-separated)
    window_seconds: float               # how far back the figures reach
    metric: str                         # which metric `value` is
    value: float | None                 # None: no labeled pair in the window
    pairs: int                          # labeled (prediction, truth) rows in the window
    requests: int                       # prediction requests in the window
    errors: int                         # of those, answered with a 5xx (client errors are the client's)
    latency_p99_ms: float | None        # None: no request in the window
    drift: dict[str, float] = field(default_factory=dict)   # feature -> PSI
    drift_score: float | None = None    # max PSI over features; None: no drift measured
    drift_reason: str = ""              # why drift is empty, when it is

    def __post_init__(self):
        # Refuse at the source what a status write would refuse later (a bare NaN in JSON).
        _finite(self.value, "value", optional=True)
        _finite(self.latency_p99_ms, "latencyP99Ms", optional=True)
        _finite(self.drift_score, "driftScore", optional=True)
        _finite(self.window_seconds, "windowSeconds")
        for name, score in self.drift.items():
            _finite(score, f"drift.{name}")
        _count(self.pairs, "pairs"), _count(self.requests, "requests"), _count(self.errors, "errors")

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "version": self.version, "replica": self.replica,
                "windowSeconds": self.window_seconds, "metric": self.metric, "value": self.value,
                "pairs": self.pairs, "requests": self.requests, "errors": self.errors,
                "latencyP99Ms": self.latency_p99_ms, "drift": dict(self.drift), "driftScore": self.drift_score,
                **({"driftReason": self.drift_reason} if self.drift_reason else {})}

    @classmethod
    def from_dict(cls, d: Any) -> "LiveFigures":
        if not isinstance(d, Mapping):
            raise LiveError(f"live figures: expected an object, got {type(d).__name__}")
        for key in ("version", "replica", "metric"):
            if not isinstance(d.get(key), str):
                raise LiveError(f"{key}: expected a string, got {d.get(key)!r}")
        drift = d.get("drift") or {}
        if not isinstance(drift, Mapping):
            raise LiveError(f"drift: expected an object of feature -> score, got {drift!r}")
        return cls(version=d["version"], replica=d["replica"],
                   window_seconds=_finite(d.get("windowSeconds"), "windowSeconds"),
                   metric=d["metric"], value=_finite(d.get("value"), "value", optional=True),
                   pairs=_count(d.get("pairs"), "pairs"), requests=_count(d.get("requests"), "requests"),
                   errors=_count(d.get("errors"), "errors"),
                   latency_p99_ms=_finite(d.get("latencyP99Ms"), "latencyP99Ms", optional=True),
                   drift={str(k): _finite(v, f"drift.{k}") for k, v in drift.items()},
                   drift_score=_finite(d.get("driftScore"), "driftScore", optional=True),
                   drift_reason=str(d.get("driftReason") or ""))


def _weighted(values: Sequence[tuple[float, int]]) -> float | None:
    """The weighted mean of (value, weight); equal weights when every weight is 0; None when empty."""
    if not values:
        return None
    total = sum(w for _, w in values)
    if total == 0:
        return sum(v for v, _ in values) / len(values)
    return sum(v * w for v, w in values) / total


def aggregate(replicas: Sequence[LiveFigures]) -> LiveFigures:
    """One version's figures over all its replicas.

    Counts are summed, p99 is the worst replica's (a bound, not the pooled p99: replicas do not
    ship their samples), the window is the longest. The metric is the pairs-weighted mean of the
    replicas' values: exact for metrics that are means over rows (accuracy, mse, mae, logloss), an
    approximation for auc and r2, which do not decompose over subsets (with replicas behind one
    Service receiving the same traffic mix, the subsets are random samples of one population and
    the weighted mean is close). Drift per feature is weighted by requests, the inputs behind it
    (a replica's PSI does not depend on how many of its inputs were labeled).
    """
    if not replicas:
        raise LiveError("aggregate: no replica figures")
    versions = {r.version for r in replicas}
    metrics = {r.metric for r in replicas}
    if len(versions) > 1 or len(metrics) > 1:
        raise LiveError(f"aggregate: figures of one version and metric expected, got versions "
                        f"{sorted(versions)} metrics {sorted(metrics)}")
    features = sorted({name for r in replicas for name in r.drift})
    drift = {name: _weighted([(r.drift[name], r.requests) for r in replicas if name in r.drift])
             for name in features}
    p99s = [r.latency_p99_ms for r in replicas if r.latency_p99_ms is not None]
    reasons = sorted({r.drift_reason for r in replicas if r.drift_reason})
    return LiveFigures(
        version=replicas[0].version, replica=",".join(sorted(r.replica for r in replicas)),
        window_seconds=max(r.window_seconds for r in replicas), metric=replicas[0].metric,
        value=_weighted([(r.value, r.pairs) for r in replicas if r.value is not None and r.pairs > 0]),
        pairs=sum(r.pairs for r in replicas), requests=sum(r.requests for r in replicas),
        errors=sum(r.errors for r in replicas), latency_p99_ms=max(p99s) if p99s else None,
        drift=drift, drift_score=max(drift.values()) if drift else None,
        drift_reason="" if drift else "; ".join(reasons))
