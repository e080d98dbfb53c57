"""The canary judge: from the canary's and the stable version's live figures, Wait, Promote, Abort or Hold.

Pure. The pipeline calls it each monitoring period with each version's figures folded over its
replicas (modelops_contracts.live.aggregate) and how long the canary has been around. The rules,
as an Argo Rollouts user expects them of an analysis:

- a manual request (the `modelops.io/rollout` annotation: promote or abort) wins over everything;
- an abort needs no waiting: as soon as the canary has served `minPairs` requests its error rate is
  judged, its p99 latency too, and as soon as both versions have `minPairs` labeled pairs its live
  metric is compared with the stable one's (a failed measurement aborts at once, as Argo's does);
- a promotion needs all three to pass, both versions to have `minPairs` pairs, and every canary pod
  to have been ready for `minDurationSeconds`;
- with neither in `timeoutSeconds` from the canary's creation, `onTimeout` says: Hold (keep serving
  the canary's share and wait for a person, as Argo pauses on an inconclusive analysis) or Abort.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from modelops_contracts.jobconfig import HIGHER_IS_BETTER

from . import constants as c
from .rollout import ABORT, Rollout

if TYPE_CHECKING:
    from modelops_contracts.live import LiveFigures

WAIT, PROMOTE, HOLD = "Wait", "Promote", "Hold"
ANNOTATION = f"{c.GROUP}/rollout"
MANUAL = {"promote": PROMOTE, "abort": ABORT}


@dataclass(frozen=True)
class Verdict:
    action: str                    # WAIT, PROMOTE, ABORT or HOLD
    reason: str                    # CamelCase, for conditions and events
    message: str                   # for people: what was compared, with the figures
    figures: dict[str, float] = field(default_factory=dict)   # numbers only, for status and history


def manual_request(annotations: Mapping[str, str] | None) -> tuple[str | None, str | None]:
    """(PROMOTE or ABORT, None) for a valid annotation; (None, problem) for another value; (None, None) without one."""
    value = (annotations or {}).get(ANNOTATION)
    if value is None:
        return None, None
    action = MANUAL.get(value.strip().lower())
    if action is None:
        return None, f"annotation {ANNOTATION}={value!r} is not a rollout request: use promote or abort"
    return action, None


def figures_of(canary: "LiveFigures | None", stable: "LiveFigures | None") -> dict[str, float]:
    """The numbers a decision rests on, named for status (absent where a version measured nothing)."""
    out: dict[str, float] = {}
    for side, live in (("canary", canary), ("stable", stable)):
        if live is None:
            continue
        for key, value in (("Value", live.value), ("Pairs", live.pairs), ("Requests", live.requests),
                           ("Errors", live.errors), ("ErrorRate", live.error_rate),
                           ("LatencyP99Ms", live.latency_p99_ms)):
            if value is not None:
                out[f"{side}{key}"] = round(float(value), 6)
    return out


def _value_text(live: "LiveFigures | None") -> str:
    if live is None:
        return "no figures"
    value = "none" if live.value is None else f"{live.value:.4g}"
    p99 = "none" if live.latency_p99_ms is None else f"{live.latency_p99_ms:.4g} ms"
    return (f"{live.metric}={value} over {live.pairs} pairs, {live.errors}/{live.requests} errors, p99 {p99}")


def summary(canary: "LiveFigures | None", stable: "LiveFigures | None") -> str:
    return f"canary {_value_text(canary)}; stable {_value_text(stable)}"


def _failures(rollout: Rollout, canary: "LiveFigures", stable: "LiveFigures | None") -> list[tuple[str, str]]:
    """What the canary already fails, judged only where there is enough to judge it."""
    out = []
    if canary.requests >= rollout.min_pairs:
        if canary.error_rate > rollout.max_error_rate:
            out.append(("ErrorRateExceeded", f"error rate {canary.error_rate:.4g} > {rollout.max_error_rate:g}"))
        p99 = canary.latency_p99_ms
        if p99 is not None and rollout.max_p99_ms is not None and p99 > rollout.max_p99_ms:
            out.append(("LatencyExceeded", f"p99 {p99:.4g} ms > {rollout.max_p99_ms:g} ms"))
        base = stable.latency_p99_ms if stable is not None and stable.requests >= rollout.min_pairs else None
        if p99 is not None and base and p99 > base * rollout.max_p99_ratio:
            out.append(("LatencyExceeded", f"p99 {p99:.4g} ms > {rollout.max_p99_ratio:g} x stable {base:.4g} ms"))
    if _comparable(rollout, canary, stable):
        drop = _drop(canary.metric, stable.value, canary.value)
        if drop > rollout.max_metric_drop:
            out.append(("MetricDropped", f"{canary.metric} {canary.value:.4g} vs stable {stable.value:.4g} "
                                         f"(drop {drop:.4g} > {rollout.max_metric_drop:g})"))
    return out


def _comparable(rollout: Rollout, canary: "LiveFigures", stable: "LiveFigures | None") -> bool:
    return (stable is not None and canary.metric == stable.metric
            and canary.value is not None and stable.value is not None
            and canary.pairs >= rollout.min_pairs and stable.pairs >= rollout.min_pairs)


def _drop(metric: str, stable: float, canary: float) -> float:
    """How much worse the canary is than the stable version, in the metric's units (negative: better)."""
    return stable - canary if metric in HIGHER_IS_BETTER else canary - stable


def _missing(rollout: Rollout, canary: "LiveFigures | None", stable: "LiveFigures | None",
             ready_for_s: float | None) -> list[str]:
    """What a promotion still waits for."""
    if ready_for_s is None:
        return ["every canary pod to be ready"]
    out = []
    if ready_for_s < rollout.min_duration_s:
        out.append(f"time ({ready_for_s:.0f}/{rollout.min_duration_s} s)")
    for side, live in (("canary", canary), ("stable", stable)):
        pairs = live.pairs if live is not None else 0
        if pairs < rollout.min_pairs or live is None or live.value is None:
            out.append(f"{side} labeled pairs ({pairs}/{rollout.min_pairs})")
    if canary is not None and stable is not None and canary.metric != stable.metric:
        out.append(f"comparable metrics (canary {canary.metric}, stable {stable.metric})")
    if canary is None or canary.requests < rollout.min_pairs:
        out.append(f"canary requests ({canary.requests if canary else 0}/{rollout.min_pairs})")
    return out


def judge(rollout: Rollout, canary: "LiveFigures | None", stable: "LiveFigures | None", *,
          ready_for_s: float | None, age_s: float, manual: str | None = None) -> Verdict:
    """The decision for this period. `ready_for_s`: how long every canary pod has been ready (None: not yet);
    `age_s`: how long since the canary was created; `manual`: PROMOTE or ABORT from the annotation."""
    figures = figures_of(canary, stable)
    seen = summary(canary, stable)
    if manual == PROMOTE:
        return Verdict(PROMOTE, "ManualPromote", f"promoted by annotation {ANNOTATION}: {seen}", figures)
    if manual == ABORT:
        return Verdict(ABORT, "ManualAbort", f"aborted by annotation {ANNOTATION}: {seen}", figures)
    failures = _failures(rollout, canary, stable) if canary is not None else []
    if failures:
        return Verdict(ABORT, failures[0][0], "; ".join(m for _, m in failures) + f" ({seen})", figures)
    missing = _missing(rollout, canary, stable, ready_for_s)
    if not missing:
        return Verdict(PROMOTE, "CanaryPassed", f"within every bound: {seen}", figures)
    waiting = "waiting for " + ", ".join(missing)
    if age_s >= rollout.timeout_s:
        timed_out = f"no decision within timeoutSeconds {rollout.timeout_s}: {waiting} ({seen})"
        if rollout.on_timeout == ABORT:
            return Verdict(ABORT, "CanaryTimedOut", timed_out, figures)
        return Verdict(HOLD, "CanaryInconclusive", f"{timed_out}; holding until {ANNOTATION}=promote or abort",
                       figures)
    return Verdict(WAIT, "Judging", f"{waiting} ({seen})", figures)


def json_patch_clearing(value: str) -> list[dict[str, Any]]:
    """A JSON patch removing the request just acted on, and only if nobody changed it since it was read."""
    path = "/metadata/annotations/" + ANNOTATION.replace("~", "~0").replace("/", "~1")
    return [{"op": "test", "path": path, "value": value}, {"op": "remove", "path": path}]
