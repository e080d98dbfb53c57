"""Turning decoded JSON into the model's float32 rows, refusing anything else with a reason."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import bad_request

# The model's one input and one output, as named in both protocols.
INPUT_NAME = "features"   # as the training image names it (modelops_training.export)
OUTPUT_NAME = "output"
_NUMERIC_KINDS = "fiu"   # float, signed and unsigned integers; not bool, str or object


def checked_rows(value: Any, *, width: int, max_rows: int, where: str) -> np.ndarray:
    """A [n, width] float32 array from nested lists, or HttpError(400) naming what is wrong."""
    if isinstance(value, (str, bytes, dict)) or value is None or isinstance(value, bool):
        raise bad_request(f"{where}: expected a list of rows, got {type(value).__name__}")
    if isinstance(value, list) and len(value) > max_rows and isinstance(value[0], list):   # before any array
        raise bad_request(f"{where}: too many instances, {len(value)} > limit {max_rows}")
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        raise bad_request(f"{where}: rows must all have {width} numbers (ragged or mixed nesting)") from None
    if array.size == 0:
        raise bad_request(f"{where}: empty batch, at least one row is needed")
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise bad_request(f"{where}: wrong dtype, numbers expected (found {_describe_kind(array.dtype)})")
    if array.ndim != 2:
        raise bad_request(f"{where}: wrong rank, expected rows [n, {width}], got shape {list(array.shape)}")
    return checked_array(array, width=width, max_rows=max_rows, where=where)


def checked_array(array: np.ndarray, *, width: int, max_rows: int, where: str) -> np.ndarray:
    if array.shape[0] == 0:
        raise bad_request(f"{where}: empty batch, at least one row is needed")
    if array.shape[1] != width:
        raise bad_request(f"{where}: wrong shape, each row needs {width} features, got {array.shape[1]}")
    if array.shape[0] > max_rows:
        raise bad_request(f"{where}: too many instances, {array.shape[0]} > limit {max_rows}")
    with np.errstate(over="ignore"):
        rows = array.astype(np.float32, copy=False)
    if not np.isfinite(rows).all():
        raise bad_request(f"{where}: NaN or Inf (or a value beyond float32 range) is not a valid feature")
    return rows


def rows_from_named(instances: Sequence[Any], feature_names: Sequence[str], input_name: str) -> list[Any]:
    """TF Serving's row format also allows objects: {"<feature>": value, ...} or {"<input>": row}."""
    rows = []
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict):
            rows.append(instance)
        elif set(instance) == {input_name}:
            rows.append(instance[input_name])
        else:
            missing = [name for name in feature_names if name not in instance]
            unknown = sorted(set(instance) - set(feature_names))
            if missing or unknown:
                raise bad_request(f"instances[{i}]: " + "; ".join(
                    part for part in (f"missing features {missing[:5]}" if missing else "",
                                      f"unknown features {unknown[:5]}" if unknown else "") if part))
            rows.append([instance[name] for name in feature_names])
    return rows


def _describe_kind(dtype: np.dtype) -> str:
    return {"b": "booleans", "U": "strings", "S": "bytes", "O": "mixed values or nulls"}.get(dtype.kind, str(dtype))
