"""Closing the loop: remember recent predictions, join them with ground truth, and keep the
live metric and the prediction distribution over bounded windows.

Memory is bounded whatever the traffic: at most `memory_rows` remembered prediction rows (with
their inputs, which a joined record carries to storage), `window` joined pairs, and about `window`
recent prediction rows for the distribution. The request path only appends arrays; class choices
and statistics are computed when feedback arrives or /metrics and /v1/live are read.
"""
from __future__ import annotations

import collections
import time
from typing import Any, Callable, Sequence

import numpy as np
from modelops_contracts.feedback import FeedbackRecord

from .errors import HttpError, bad_request


class RecentRows:
    """The latest output arrays, holding at least the last `limit` rows and at most `limit` + one array."""

    def __init__(self, limit: int):
        self._limit = limit
        self._arrays: collections.deque[np.ndarray] = collections.deque()
        self._rows = 0

    def append(self, outputs: np.ndarray) -> None:
        self._arrays.append(outputs)
        self._rows += len(outputs)
        while self._rows - len(self._arrays[0]) >= self._limit:
            self._rows -= len(self._arrays.popleft())

    def last(self) -> np.ndarray | None:
        if not self._arrays:
            return None
        return np.concatenate(self._arrays)[-self._limit:]


def json_rows(array: np.ndarray) -> list:
    """An array as JSON-ready nested lists; string tensors (bytes) as text."""
    if array.dtype.kind in "OS":
        return np.vectorize(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v),
                            otypes=[object])(array).tolist()
    return array.tolist()


class Feedback:
    def __init__(self, task: str, classes: Sequence[Any], *, window: int, memory_rows: int, version: str = "",
                 input_names: Sequence[str] = ("features",), clock: Callable[[], float] = time.time):
        self.task = task
        self._class_index = {str(c): i for i, c in enumerate(classes)}
        self._classes = list(classes)
        self._memory_rows = memory_rows
        self._version, self._input_names, self._clock = version, list(input_names), clock
        # prediction id -> (inputs, first output)
        self._recent: collections.OrderedDict[str, tuple[list[np.ndarray], np.ndarray]] = collections.OrderedDict()
        self._recent_rows = 0
        # (time, truth as a class index or number, the prediction's output row)
        self._pairs: collections.deque[tuple[float, float, np.ndarray]] = collections.deque(maxlen=window)
        self._predicted = RecentRows(window)

    def _point_predictions(self, outputs: np.ndarray) -> np.ndarray:
        """One number per row: the regression value, or the predicted class index (of the first output,
        whatever its rank: an [n] or [n, 1, k] output is flattened per row)."""
        rows = outputs.reshape(len(outputs), -1)
        return rows.argmax(axis=1) if self.task == "classification" else rows[:, 0]

    def remember(self, prediction_id: str, outputs: np.ndarray, inputs: Sequence[np.ndarray] = ()) -> None:
        self._predicted.append(outputs)
        if len(outputs) > self._memory_rows:
            return
        self._recent[prediction_id] = (list(inputs), outputs)
        self._recent_rows += len(outputs)
        while self._recent_rows > self._memory_rows:
            _, (_, evicted) = self._recent.popitem(last=False)
            self._recent_rows -= len(evicted)

    def knows(self, prediction_id: str) -> bool:
        return prediction_id in self._recent

    def join_id(self, prediction_id: str, truth: Any) -> FeedbackRecord:
        remembered = self._recent.get(prediction_id)
        if remembered is None:
            raise HttpError(404, f"id: prediction {prediction_id!r} is unknown, already has feedback, "
                                 f"or is older than the last {self._memory_rows} remembered rows")
        inputs, outputs = remembered
        truths = self._truths(truth, len(outputs))
        del self._recent[prediction_id]
        self._recent_rows -= len(outputs)
        return self._add(prediction_id, inputs, outputs, truth, truths)

    def join_outputs(self, prediction_id: str, inputs: Sequence[np.ndarray], outputs: np.ndarray,
                     truth: Any) -> FeedbackRecord:
        return self._add(prediction_id, inputs, outputs, truth, self._truths(truth, len(outputs)))

    def unjoined(self, prediction_id: str, truth: Any) -> FeedbackRecord:
        """The truth for a prediction this replica never made (its replica was gone): checked, kept
        for the record, and counted in no metric."""
        values = truth if isinstance(truth, list) else [truth]
        if not values:
            raise bad_request("truth: expected at least one value")
        for i, value in enumerate(values):
            self._truth(value, i)
        return FeedbackRecord(prediction_id=prediction_id, version=self._version, truth=list(values),
                              time=self._clock(), joined=False)

    def _add(self, prediction_id: str, inputs: Sequence[np.ndarray], outputs: np.ndarray, truth: Any,
             truths: list[float]) -> FeedbackRecord:
        now = self._clock()
        rows = outputs.reshape(len(outputs), -1)
        self._pairs.extend((now, t, row) for t, row in zip(truths, rows))
        return FeedbackRecord(prediction_id=prediction_id, version=self._version,
                              inputs={name: json_rows(a) for name, a in zip(self._input_names, inputs)},
                              prediction=json_rows(outputs), time=now,
                              truth=list(truth) if isinstance(truth, list) else [truth])

    def _truths(self, truth: Any, rows: int) -> list[float]:
        values = truth if isinstance(truth, list) else [truth]
        if len(values) != rows:
            raise bad_request(f"truth: {len(values)} values for {rows} predicted rows")
        return [self._truth(v, i) for i, v in enumerate(values)]

    def _truth(self, value: Any, i: int) -> float:
        if self.task == "classification":
            if self._class_index:
                index = self._class_index.get(str(value))
                if index is None or isinstance(value, (list, dict)):
                    raise bad_request(f"truth[{i}]: {value!r} is not one of the classes {self._classes[:20]}")
                return float(index)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return float(value)
            raise bad_request(f"truth[{i}]: expected a class index")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise bad_request(f"truth[{i}]: expected a finite number, got {value!r}")
        return float(value)

    def window(self, since: float = float("-inf")) -> tuple[np.ndarray, np.ndarray]:
        """(truths, output rows) of the pairs joined at or after `since` (unix seconds)."""
        recent = [(t, row) for at, t, row in self._pairs if at >= since]
        if not recent:
            return np.zeros(0), np.zeros((0, 1))
        return np.array([t for t, _ in recent]), np.stack([row for _, row in recent]).astype(np.float64)

    def live_metrics(self) -> dict[str, float]:
        truths, rows = self.window()
        if not len(truths):
            return {}
        points = self._point_predictions(rows)
        if self.task == "classification":
            return {"accuracy": float((points == truths).mean())}
        error = points - truths
        return {"mse": float((error ** 2).mean()), "mae": float(np.abs(error).mean())}

    @property
    def pairs(self) -> int:
        return len(self._pairs)

    def distribution(self) -> dict[str, float]:
        """Regression: mean, std and quantiles of recent predictions; classification: share per class."""
        outputs = self._predicted.last()
        if outputs is None:
            return {}
        values = self._point_predictions(outputs).astype(np.float64)
        if self.task == "classification":
            counts = np.bincount(values.astype(np.int64), minlength=len(self._classes))
            labels = self._classes or list(range(len(counts)))
            return {f"class={labels[i]}": float(c) / len(values) for i, c in enumerate(counts)}
        q = np.quantile(values, [0.1, 0.5, 0.9])
        return {"mean": float(values.mean()), "std": float(values.std()),
                "p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2])}
