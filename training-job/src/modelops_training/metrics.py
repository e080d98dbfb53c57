"""Held-out metrics computed from predictions with NumPy, so Keras models and LiteRT interpreters
are scored by the very same code."""
from __future__ import annotations

import logging
import math

import numpy as np

from .errors import BadData

log = logging.getLogger("modelops.metrics")
_EPS = 1e-7
# Why a metric can be undefined on a held-out split, for the message that fails the stage.
_UNDEFINED_BECAUSE = {
    "auc": "an AUC needs at least two classes among the held-out rows; use more validation rows "
           "(data.validationSplit) or another data.shuffleSeed",
}


def evaluate(task: str, y_true: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Regression: predictions [n, 1]; classification: class probabilities [n, classes]."""
    if task == "regression":
        return regression_metrics(y_true.astype(np.float64), predictions.reshape(-1).astype(np.float64))
    return classification_metrics(y_true.astype(np.int64), predictions.astype(np.float64))


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    err = p - y
    total = float(np.sum((y - y.mean()) ** 2))
    return {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err))),
            "r2": 1.0 - float(np.sum(err ** 2)) / total if total > 0 else 0.0}


def classification_metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    probs = np.clip(probs, _EPS, 1.0)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return {"accuracy": float(np.mean(np.argmax(probs, axis=1) == y)),
            "auc": macro_auc(y, probs),
            "logloss": float(-np.mean(np.log(probs[np.arange(len(y)), y])))}


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC (binary) or the one-vs-rest macro average over classes present in y (multi-class)."""
    if probs.shape[1] == 2:
        return binary_auc(y == 1, probs[:, 1])
    scores = [binary_auc(y == k, probs[:, k]) for k in range(probs.shape[1]) if 0 < np.sum(y == k) < len(y)]
    return float(np.mean(scores)) if scores else float("nan")


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Mann–Whitney U with average ranks for ties."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    # Average 1-based rank of each distinct score value.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


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
