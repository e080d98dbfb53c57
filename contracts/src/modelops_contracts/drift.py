"""The training data's reference distribution, and the drift score of live inputs against it.

The trainer cuts each input feature of the training split into quantile bins and records the cut
points and each bin's share of the rows in the artifact manifest (`reference`); the server counts
its recent inputs into the same bins and scores each feature by its population stability index:

    PSI = sum over bins of (live share - reference share) * ln(live share / reference share)

with every share floored at `SHARE_FLOOR` (an empty bin would make it infinite). By the usual
reading, PSI < 0.1 is no shift, 0.1-0.25 a moderate one, > 0.25 a large one.

A value falls in bin `i` = the number of edges <= value (NumPy: `searchsorted(edges, v, "right")`),
on both sides, so a discrete feature sitting on a cut point is counted the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

BINS = 10
SHARE_FLOOR = 1e-4
# Inputs with more values per row than this get no reference: an image's pixels are not features
# whose drift one reads one by one, and the manifest would grow by kilobytes per pixel.
MAX_FEATURES = 256


class ReferenceError(ValueError):
    """A reference that is malformed; the message names the field."""


@dataclass(frozen=True)
class FeatureBins:
    name: str
    edges: tuple[float, ...]        # ascending cut points
    shares: tuple[float, ...]       # len(edges) + 1 shares of the training rows, summing to 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "edges": list(self.edges), "shares": list(self.shares)}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "FeatureBins":
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
            raise ReferenceError(f"{where}: expected {{name, edges, shares}}")
        edges, shares = _numbers(d.get("edges"), f"{where}.edges"), _numbers(d.get("shares"), f"{where}.shares")
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise ReferenceError(f"{where}.edges: must be strictly ascending")
        if len(shares) != len(edges) + 1:
            raise ReferenceError(f"{where}.shares: expected {len(edges) + 1} shares (one per bin), got {len(shares)}")
        if any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-6:
            raise ReferenceError(f"{where}.shares: expected non-negative shares summing to 1")
        return cls(d["name"], tuple(edges), tuple(shares))


@dataclass(frozen=True)
class Reference:
    input: str                              # the input tensor the features are the columns of
    rows: int                               # training rows behind the shares
    features: tuple[FeatureBins, ...]       # column i of the input's flattened row is features[i]

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "rows": self.rows, "features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, d: Any) -> "Reference":
        if not isinstance(d, Mapping):
            raise ReferenceError("reference: expected an object with input, rows and features")
        features = d.get("features")
        if not isinstance(d.get("input"), str) or not isinstance(features, list) or not features:
            raise ReferenceError("reference: expected an input name and a non-empty list of features")
        if len(features) > MAX_FEATURES:
            raise ReferenceError(f"reference.features: {len(features)} features, at most {MAX_FEATURES}")
        rows = d.get("rows")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ReferenceError(f"reference.rows: expected a positive count, got {rows!r}")
        return cls(d["input"], rows, tuple(FeatureBins.from_dict(f, f"reference.features[{i}]")
                                           for i, f in enumerate(features)))


def _numbers(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise ReferenceError(f"{where}: expected a list of finite numbers")
    return [float(v) for v in value]


def psi(reference_shares: Sequence[float], live_counts: Sequence[int]) -> float:
    """The population stability index of live counts per bin against the reference shares."""
    if len(reference_shares) != len(live_counts):
        raise ValueError(f"{len(live_counts)} live bins for {len(reference_shares)} reference bins")
    total = sum(live_counts)
    if total == 0:
        return 0.0
    score = 0.0
    for expected, count in zip(reference_shares, live_counts):
        e, a = max(expected, SHARE_FLOOR), max(count / total, SHARE_FLOOR)
        score += (a - e) * math.log(a / e)
    return score
