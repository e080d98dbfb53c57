"""A model's input data: one array (rows of a table, or N-d examples) or named arrays (several inputs).

Keras, tf.data and the fingerprint all take either form; these helpers keep the rest of the trainer
from caring which one it holds. The first dimension of every array is the example.
"""
from __future__ import annotations

from typing import Mapping, Union

import numpy as np

Features = Union[np.ndarray, Mapping[str, np.ndarray]]


def count(x: Features) -> int:
    return len(next(iter(x.values()))) if isinstance(x, Mapping) else len(x)


def take(x: Features, index) -> Features:
    """The examples at `index` (a slice or an index array), in the same form."""
    return {k: v[index] for k, v in x.items()} if isinstance(x, Mapping) else x[index]


def named(x: Features) -> list[tuple[str, np.ndarray]]:
    """(name, array) pairs in a stable order; a single array is named ""."""
    return sorted(x.items()) if isinstance(x, Mapping) else [("", x)]


def is_table(x: Features) -> bool:
    return not isinstance(x, Mapping) and x.ndim == 2


def describe(x: Features, examples: int | None = None) -> str:
    """For log lines: `1438 examples of uint8 [8, 8, 1]` or `… of image uint8 [8, 8, 1], age float32 [1]`
    (`examples` when x only samples them)."""
    parts = [f"{name + ' ' if name else ''}{a.dtype} {list(a.shape[1:])}" for name, a in named(x)]
    return f"{count(x) if examples is None else examples} examples of {', '.join(parts)}"
