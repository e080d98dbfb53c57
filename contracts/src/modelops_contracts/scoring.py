"""The evaluation metrics (`jobconfig.METRICS`) computed from predictions with NumPy.

One definition for every place a model is scored: the trainer's held-out split, compression's
re-evaluation, and the server's live metric over labeled traffic, so a live value compares with the
evaluation threshold like for like. The only contract module that needs NumPy; the training and
serving images both have it, the operator never imports this module.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-7


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
