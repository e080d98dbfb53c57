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
import re
from array import array
from functools import lru_cache
from itertools import chain
from typing import Any, Callable

import numpy as np
import orjson

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
    return _buffer(level, dtype, shape)


def _buffer(values: list[int], dtype: str, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        if dtype == "uint8":
            return np.frombuffer(bytes(values), np.uint8).reshape(shape)
        return np.frombuffer(array("q", values), np.int64).reshape(shape)
    except (ValueError, OverflowError):  # outside 0..255 or int64: the general path names the problem
        return None


# --- TF Serving rows straight from the body's text ----------------------------------------------------
# A nested image batch as JSON is mostly one-element lists; building them as Python objects costs more
# than the numbers. For a body that is exactly {"instances": [...]} of integers, the text is checked with
# bytes operations (each one C pass over the body) and only the numbers go to orjson, as one flat list:
# - the brackets and commas alone must be those of a regular array of the expected shape;
# - no number may be followed by whitespace (valid JSON allows `5 ,`; such bodies take the general path),
#   so whitespace never joins two numbers into one once it is dropped;
# - orjson then reads the numbers as one flat JSON list, which refuses an empty slot (`,,`) and anything
#   that is not a JSON integer (`01`, `+1`, `1-2`, `-`).
_INSTANCES = re.compile(rb'\A\s*\{\s*"instances"\s*:\s*(\[.*\])\s*\}\s*\Z', re.S)
_ALLOWED = b"0123456789-[], \t\n\r"
_NUMBERS_AND_SPACE = bytes.maketrans(b"0123456789-\t\n\r", b"00000000000   ")


@lru_cache(maxsize=64)
def _structure(shape: tuple[int, ...]) -> bytes:
    text = b""
    for d in reversed(shape):
        text = b"[" + b",".join([text] * d) + b"]"
    return text


def instances_text(body: bytes, item_shape: tuple[int, ...], dtype: str,
                   counted: Callable[[int], None] = lambda n: None) -> np.ndarray | None:
    """The batch a `{"instances": [...]}` body of integers spells, as `integers` would return it; else None.

    `counted` gets the instance count read from the brackets before any number is decoded (it may refuse it)."""
    if dtype not in INTEGER_DTYPES or -1 in item_shape:
        return None
    match = _INSTANCES.match(body)
    span = match.group(1) if match else b""
    if not span or span.translate(None, _ALLOWED) or b"0 " in span.translate(_NUMBERS_AND_SPACE):
        return None
    structure = span.translate(None, b"0123456789- \t\n\r")
    per_item = 1 + sum(math.prod(item_shape[:k]) for k in range(1, len(item_shape)))   # "[" of one item
    n, rest = divmod(structure.count(b"[") - 1, per_item)
    if n < 1 or rest or structure != _structure((n, *item_shape)):
        return None
    counted(n)
    try:
        values = orjson.loads(b"[" + span.translate(None, b"[] \t\n\r") + b"]")
    except orjson.JSONDecodeError:
        return None
    return _buffer(values, dtype, (n, *item_shape)) if len(values) == n * math.prod(item_shape) else None
