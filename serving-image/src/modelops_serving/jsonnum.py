"""Integer batches (image pixels) from decoded JSON into NumPy without NumPy's per-element discovery.

`np.array()` on thousands of nested Python ints inspects every element to find the shape and dtype,
which costs more than the rest of an image request. When a batch is a regular nesting of plain ints,
it is flattened by C-level iteration instead (every list at each level checked to have the expected
length, then `itertools.chain` over the level) and copied into the buffer in one call: `bytes()` for
uint8, `array('q')` for the other integer dtypes. Anything else (floats, booleans, nulls, strings,
ragged nesting, a free dimension, a value out of range) answers None, and the caller decodes the value
the general way, which gives the same array or the refusal it always gave. An array returned here
still goes through the same dtype, range and shape checks as one decoded the general way.
"""
from __future__ import annotations

import math
from array import array
from itertools import chain
from typing import Any

import numpy as np

INTEGER_DTYPES = frozenset({"int8", "uint8", "int16", "int32", "int64"})


def integers(value: Any, item_shape: tuple[int, ...], dtype: str, *, flat: bool = False) -> np.ndarray | None:
    """[n, *item_shape] from nested lists (or, `flat`, from one list of n·prod(item_shape) values): uint8
    for a uint8 input, else int64; None unless every leaf is a plain int and the nesting is regular."""
    if dtype not in INTEGER_DTYPES or -1 in item_shape or not isinstance(value, list) or not value:
        return None
    level = value
    if flat:
        item = math.prod(item_shape)
        if not item or len(value) % item:
            return None
        shape = (len(value) // item, *item_shape)
    else:
        shape = (len(value), *item_shape)
        for d in item_shape:
            try:
                if set(map(len, level)) != {d}:
                    return None
            except TypeError:          # a number where a list belongs
                return None
            level = list(chain.from_iterable(level))
    if set(map(type, level)) != {int}:  # bool is not int here: true/false stay refused by the general path
        return None
    try:
        if dtype == "uint8":
            return np.frombuffer(bytes(level), np.uint8).reshape(shape)
        return np.frombuffer(array("q", level), np.int64).reshape(shape)
    except (ValueError, OverflowError):  # outside 0..255 or int64: the general path names the problem
        return None
