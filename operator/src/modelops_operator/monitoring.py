"""Live quality policy: from the served version's live figures to no action, an Alert or a Retrain.

Pure. `decide` judges one reading; the pipeline turns its verdict into the LiveQuality condition,
Events (on change only), and, for a Retrain, the next version. A retrain is never started on fewer
than `minPairs` labeled pairs (the figures would not say much, and the feedback it trains on would be
thin), within `cooldownSeconds` of the last automatic one, beyond `maxRetrainsPerWindow` per
`windowSeconds`, or while another version is on its way: then the drop is an Alert that says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from modelops_contracts.live import LiveFigures

from .spec import Spec

NONE, ALERT, RETRAIN = "None", "Alert", "Retrain"


@dataclass(frozen=True)
class Monitoring:
    """spec.monitoring as parsed, with the threshold already defaulted to the evaluation's."""
    metric: str
    threshold_min: float | None
    threshold_max: float | None
    min_pairs: int
    drift_bound: float | None
    cooldown_s: float
    max_retrains_per_window: int
    window_s: float
    on_quality_drop: str

    @classmethod
    def of(cls, spec: Spec) -> "Monitoring":
        own = spec.monitoring_threshold_min is not None or spec.monitoring_threshold_max is not None
        return cls(metric=spec.metric,
                   threshold_min=spec.monitoring_threshold_min if own else spec.threshold_min,
                   threshold_max=spec.monitoring_threshold_max if own else spec.threshold_max,
                   min_pairs=spec.monitoring_min_pairs, drift_bound=spec.monitoring_drift_bound,
                   cooldown_s=spec.monitoring_cooldown_s, max_retrains_per_window=spec.monitoring_max_retrains,
                   window_s=spec.monitoring_window_s, on_quality_drop=spec.on_quality_drop)

    def breaks(self, value: float) -> bool:
        if self.threshold_min is not None:
            return value < self.threshold_min
        return value > self.threshold_max

    @property
    def threshold_text(self) -> str:
        return f">= {self.threshold_min:g}" if self.threshold_min is not None else f"<= {self.threshold_max:g}"


@dataclass(frozen=True)
class Decision:
    action: str                  # NONE, ALERT or RETRAIN
    quality: bool | None         # the LiveQuality condition: True met, False dropped, None unknown
    reason: str                  # CamelCase: the condition's reason and the Event's
    message: str
    figures: dict[str, Any] = field(default_factory=dict)   # what was judged, for history and Events


def figures_of(live: LiveFigures, m: Monitoring) -> dict[str, Any]:
    out = {"metric": live.metric, "value": live.value, "pairs": live.pairs, "minPairs": m.min_pairs,
           "threshold": m.threshold_text, "driftScore": live.drift_score}
    if m.drift_bound is not None:
        out["driftBound"] = m.drift_bound
    return out


def decide(m: Monitoring, live: LiveFigures | None, *, now: float, retrains: Sequence[float],
           busy: str | None = None) -> Decision:
    """Judge the served version's aggregated figures.

    `now` and `retrains` (when each earlier automatic retrain started) are unix seconds; `busy` names
    the version already on its way, if one is (a retrain then would only supersede it).
    """
    if live is None:
        return Decision(NONE, None, "NoFigures", "no ready serving replica reported live figures")
    figures = figures_of(live, m)
    drop = _drop(m, live)
    if drop is None:
        if live.pairs < m.min_pairs:
            return Decision(NONE, None, "TooFewPairs", f"{live.pairs} labeled pairs of the {m.min_pairs} needed "
                            f"to judge {m.metric}{_drift_note(live, m)}", figures)
        return Decision(NONE, True, "QualityMet", f"{live.metric}={live.value:.4g} over {live.pairs} labeled pairs "
                        f"(threshold {m.threshold_text}){_drift_note(live, m)}", figures)
    reason, what = drop
    held = _held(m, live, now, retrains, busy)
    if held:
        return Decision(ALERT, False, reason, f"{what}; not retraining: {held}", figures)
    return Decision(RETRAIN, False, reason, f"{what}; retraining on the collected feedback", figures)


def _drop(m: Monitoring, live: LiveFigures) -> tuple[str, str] | None:
    """(reason, what) when the figures show a drop: the metric past its threshold over enough pairs, or drift."""
    # A server that reports another metric than the one the threshold is about cannot be judged on it.
    if (live.metric == m.metric and live.value is not None and live.pairs >= m.min_pairs
            and m.breaks(live.value)):
        return "QualityDropped", (f"{live.metric}={live.value:.4g} over {live.pairs} labeled pairs breaks "
                                  f"the threshold {m.threshold_text}")
    if m.drift_bound is not None and live.drift_score is not None and live.drift_score > m.drift_bound:
        worst = max(live.drift, key=live.drift.get) if live.drift else "inputs"
        return "DriftExceeded", (f"input drift {live.drift_score:.3g} ({worst}) passes the bound "
                                 f"{m.drift_bound:g}")
    return None


def _held(m: Monitoring, live: LiveFigures, now: float, retrains: Sequence[float], busy: str | None) -> str:
    """Why a drop starts no retrain ('' when it does)."""
    if m.on_quality_drop != "Retrain":
        return "monitoring.onQualityDrop is Alert"
    if live.pairs < m.min_pairs:
        return f"{live.pairs} labeled pairs, fewer than minPairs {m.min_pairs}"
    if busy:
        return f"{busy} is already on its way"
    last = max(retrains, default=None)
    if last is not None and now - last < m.cooldown_s:
        return f"cooling down for {m.cooldown_s - (now - last):.0f} s more after the last automatic retrain"
    recent = [t for t in retrains if now - t < m.window_s]
    if len(recent) >= m.max_retrains_per_window:
        return (f"{len(recent)} automatic retrains in the last {m.window_s:g} s reach "
                f"maxRetrainsPerWindow {m.max_retrains_per_window}")
    return ""


def _drift_note(live: LiveFigures, m: Monitoring) -> str:
    if live.drift_score is None:
        return f"; drift not measured ({live.drift_reason})" if live.drift_reason else ""
    return f"; drift {live.drift_score:.3g}" + (f" (bound {m.drift_bound:g})" if m.drift_bound is not None else "")
