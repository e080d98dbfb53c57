"""Held-out metrics: what the gate reads. The formulas live in `modelops_contracts.scoring`, shared with
the server's live metric, so Keras models, LiteRT interpreters and live traffic are scored by the same code."""
from __future__ import annotations

import logging
import math


from modelops_contracts.scoring import (binary_auc, classification_metrics, evaluate,  # noqa: F401 (the trainer's API)
                                        macro_auc, regression_metrics)

from .errors import BadData

log = logging.getLogger("modelops.metrics")
# Why a metric can be undefined on a held-out split, for the message that fails the stage.
_UNDEFINED_BECAUSE = {
    "auc": "an AUC needs at least two classes among the held-out rows; use more validation rows "
           "(data.validationSplit) or another data.shuffleSeed",
}


def degradation(before: float, after: float, higher_is_better: bool) -> float:
    """How much worse `after` is than `before` (positive = worse), whichever direction the metric points."""
    return before - after if higher_is_better else after - before


def reportable(values: dict[str, float], metric: str, where: str) -> dict[str, float]:
    """The finite metrics, or BadData when the gated one is undefined (NaN or infinite).

    A NaN is not JSON and cannot meet a threshold: the gate must fail with a reason instead of
    the report carrying it. Other undefined metrics are only informative, so they are left out.
    """
    value = values.get(metric)
    if value is None or not math.isfinite(value):
        why = _UNDEFINED_BECAUSE.get(metric, "the model's predictions are not finite")
        raise BadData(f"evaluation.metric: {metric} is {value} on the {where} ({why})")
    dropped = sorted(k for k, v in values.items() if not math.isfinite(v))
    if dropped:
        log.warning("leaving undefined metrics out of the report: %s", ", ".join(dropped))
    return {k: v for k, v in values.items() if math.isfinite(v)}
