"""This replica's live figures over a sliding window (`GET /v1/live`, contracts.live.LiveFigures).

Requests, 5xx answers and latencies go into time slots, each with a log-scale latency histogram,
so the window slides a slot at a time and memory does not grow with traffic; p99 is read from the
merged histogram (within one bucket: about 5%). Recent inputs of the model's feature vector are
kept (at most `rows` of them) for the drift score against the training data's reference bins.
The metric comes from the feedback window's labeled pairs, scored by contracts.scoring.
"""
from __future__ import annotations

import collections
import math
import time
from typing import Callable, Sequence

import numpy as np
from modelops_contracts import drift, scoring
from modelops_contracts.jobconfig import METRICS
from modelops_contracts.live import LiveFigures
from modelops_contracts.manifest import Manifest

from .feedback import Feedback

SLOTS = 30
LATENCY_MIN_S = 1e-5
LATENCY_RATIO = 1.1                     # bucket i covers [MIN·r^i, MIN·r^(i+1))
LATENCY_BUCKETS = 200                   # up to ~1.9e3 s; slower lands in the last bucket
_LOG_RATIO = math.log(LATENCY_RATIO)
CLASSIFICATION_METRICS = ("accuracy", "auc", "logloss")


class RequestWindow:
    """Requests, errors and the latency histogram of the last `window_s` seconds, in SLOTS slots."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic):
        self._width = window_s / SLOTS
        self._clock = clock
        # slot number -> [requests, errors, latency histogram]
        self._slots: collections.OrderedDict[int, list] = collections.OrderedDict()

    def observe(self, seconds: float, error: bool) -> None:
        slot = int(self._clock() // self._width)
        entry = self._slots.get(slot)
        if entry is None:
            entry = self._slots[slot] = [0, 0, [0] * LATENCY_BUCKETS]     # a list: += on it is 10x numpy's
            while next(iter(self._slots)) <= slot - SLOTS:
                self._slots.popitem(last=False)
        entry[0] += 1
        entry[1] += error
        bucket = int(math.log(max(seconds, LATENCY_MIN_S) / LATENCY_MIN_S) / _LOG_RATIO)
        entry[2][min(bucket, LATENCY_BUCKETS - 1)] += 1

    def figures(self) -> tuple[int, int, float | None]:
        """(requests, errors, p99 in ms or None) over the window."""
        oldest = int(self._clock() // self._width) - SLOTS + 1
        live = [e for slot, e in self._slots.items() if slot >= oldest]
        requests = sum(e[0] for e in live)
        if not requests:
            return 0, 0, None
        histogram = np.sum(np.array([e[2] for e in live], dtype=np.int64), axis=0)
        bucket = int(np.searchsorted(np.cumsum(histogram), math.ceil(0.99 * requests)))
        # The bucket's geometric middle: within half a bucket (~5%) of any latency in it.
        p99_s = LATENCY_MIN_S * LATENCY_RATIO ** (bucket + 0.5)
        return requests, sum(e[1] for e in live), round(p99_s * 1000, 3)


class InputWindow:
    """Recent rows of one input, flattened, at most `rows` of them and none older than the window."""

    def __init__(self, rows: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self._limit, self._window_s, self._clock = rows, window_s, clock
        self._arrays: collections.deque[tuple[float, np.ndarray]] = collections.deque()
        self._rows = 0

    def append(self, array: np.ndarray) -> None:
        flat = array.reshape(len(array), -1)
        self._arrays.append((self._clock(), flat))
        self._rows += len(flat)
        while self._rows - len(self._arrays[0][1]) >= self._limit:
            self._rows -= len(self._arrays.popleft()[1])

    def recent(self) -> np.ndarray | None:
        since = self._clock() - self._window_s
        arrays = [a for at, a in self._arrays if at >= since]
        return np.concatenate(arrays)[-self._limit:].astype(np.float64) if arrays else None


def drift_scores(reference: drift.Reference, rows: np.ndarray) -> dict[str, float]:
    """PSI per reference feature of `rows` (columns in the reference's order)."""
    scores = {}
    for column, feature in enumerate(reference.features):
        bins = np.searchsorted(np.asarray(feature.edges), rows[:, column], side="right")
        counts = np.bincount(bins, minlength=len(feature.shares))
        scores[feature.name] = round(drift.psi(feature.shares, counts.tolist()), 6)
    return scores


def live_metric(manifest: Manifest) -> str:
    """The evaluation metric when the manifest names one that fits its task, else accuracy or mse."""
    named = manifest.extra.get("metric")
    fits = CLASSIFICATION_METRICS if manifest.task == "classification" else tuple(m for m in METRICS
                                                                                  if m not in CLASSIFICATION_METRICS)
    if named in METRICS and named in fits:
        return named
    return "accuracy" if manifest.task == "classification" else "mse"


def metric_value(task: str, metric: str, truths: np.ndarray, rows: np.ndarray) -> float | None:
    """The metric over the pairs, or None where it is undefined (no pairs; auc over one class; an output
    that is not one probability per class)."""
    if not len(truths):
        return None
    if task == "classification":
        if metric == "accuracy":
            return float((rows.argmax(axis=1) == truths).mean())
        if rows.shape[1] < 2 or truths.max() >= rows.shape[1]:
            return None
        value = scoring.classification_metrics(truths.astype(np.int64), rows)[metric]
    else:
        value = scoring.regression_metrics(truths, rows[:, 0])[metric]
    return value if math.isfinite(value) else None


class LiveMonitor:
    def __init__(self, manifest: Manifest, feedback: Feedback, *, replica: str, window_s: float, rows: int,
                 input_names: Sequence[str], clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time):
        self._manifest, self._feedback, self._replica, self._window_s = manifest, feedback, replica, window_s
        self._wall_clock = wall_clock
        self.requests = RequestWindow(window_s, clock)
        self.metric = live_metric(manifest)
        self._reference, self._reason = manifest.reference, ""
        self._input_index: int | None = None
        if self._reference is None:
            self._reason = "the version's manifest has no reference distribution (trained before drift was measured)"
        elif self._reference.input not in input_names:
            self._reason = f"the reference describes input {self._reference.input!r}, which the model does not take"
        else:
            self._input_index = list(input_names).index(self._reference.input)
        self.inputs = InputWindow(rows, window_s, clock)

    def observe_inputs(self, inputs: Sequence[np.ndarray]) -> None:
        if self._input_index is not None:
            self.inputs.append(inputs[self._input_index])

    def _drift(self) -> tuple[dict[str, float], str]:
        if self._input_index is None:
            return {}, self._reason
        rows = self.inputs.recent()
        if rows is None:
            return {}, "no inputs in the window"
        if rows.shape[1] != len(self._reference.features):
            return {}, (f"inputs have {rows.shape[1]} values per row, the reference "
                        f"{len(self._reference.features)} features")
        return drift_scores(self._reference, rows), ""

    def figures(self) -> LiveFigures:
        truths, rows = self._feedback.window(since=self._wall_clock() - self._window_s)
        requests, errors, p99 = self.requests.figures()
        scores, reason = self._drift()
        return LiveFigures(version=self._manifest.version, replica=self._replica, window_seconds=self._window_s,
                           metric=self.metric, value=metric_value(self._manifest.task, self.metric, truths, rows),
                           pairs=len(truths), requests=requests, errors=errors, latency_p99_ms=p99,
                           drift=scores, drift_score=max(scores.values()) if scores else None, drift_reason=reason)
