"""Turning decoded request values into the model's input arrays, refusing anything else with a reason.

Every check is against the manifest's signature (modelops_contracts.signature): each refusal names
the input and the dtype and shape it expects. A batch is a list of arrays in the signature's input
order, all with the same first (batch) dimension.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from modelops_contracts.signature import Signature, TensorSpec

from .errors import bad_request

_FLOATS = frozenset({"float16", "float32", "float64"})
_INTEGERS = frozenset({"int8", "uint8", "int16", "int32", "int64"})


def expected(spec: TensorSpec) -> str:
    """How a refusal spells what an input takes: `input 'image' takes uint8 [n, 8, 8, 1]`."""
    dims = ", ".join("n" if i == 0 else ("*" if d == -1 else str(d)) for i, d in enumerate(spec.shape))
    return f"input {spec.name!r} takes {spec.dtype} [{dims}]"


def from_json(value: Any, spec: TensorSpec, *, where: str) -> np.ndarray:
    """A batch for one input from nested JSON lists ([n, ...item shape])."""
    if isinstance(value, (str, bytes, dict)) or value is None or isinstance(value, bool):
        raise bad_request(f"{where}: expected a list (one entry per instance), got {type(value).__name__}; "
                          f"{expected(spec)}")
    return checked(decoded(value, spec, where=where), spec, where=where)


def decoded(value: Any, spec: TensorSpec, *, where: str) -> np.ndarray:
    """Nested JSON lists as an array of the input's dtype (either protocol's JSON data)."""
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        raise bad_request(f"{where}: ragged or mixed nesting; {expected(spec)}") from None
    # numpy reads true/false among numbers as 1/0: only a batch holding a 0 or a 1 needs the closer look.
    if spec.dtype != "bool" and array.dtype.kind in "fiu" and ((array == 0) | (array == 1)).any() \
            and _holds_bool(value):
        raise bad_request(f"{where}: wrong dtype, numbers expected (found true/false); {expected(spec)}")
    return typed(array, spec, where=where)


def _holds_bool(value: Any) -> bool:
    """Whether regular nested lists (numpy accepted them) hold a JSON true or false."""
    if not isinstance(value, list):
        return isinstance(value, bool)
    if value and not isinstance(value[0], list):   # a row of scalars: one pass at C speed
        return bool in set(map(type, value))
    return any(map(_holds_bool, value))


def typed(array: np.ndarray, spec: TensorSpec, *, where: str) -> np.ndarray:
    """Decoded JSON values as the input's dtype, refusing values of another kind or out of range."""
    kind = array.dtype.kind
    if array.size == 0:
        raise bad_request(f"{where}: empty batch, at least one instance is needed")
    if spec.dtype in _FLOATS:
        if kind not in "fiu":
            raise bad_request(f"{where}: wrong dtype, numbers expected (found {_describe_kind(array.dtype)}); "
                              f"{expected(spec)}")
        with np.errstate(over="ignore"):
            out = array.astype(spec.dtype, copy=False)
        if not np.isfinite(out).all():
            raise bad_request(f"{where}: NaN or Inf (or a value beyond {spec.dtype} range) is not a valid "
                              f"value for input {spec.name!r}")
        return out
    if spec.dtype in _INTEGERS:
        if kind not in "iu":
            raise bad_request(f"{where}: wrong dtype, integers expected (found {_describe_kind(array.dtype)}); "
                              f"{expected(spec)}")
        info = np.iinfo(spec.dtype)
        if array.min() < info.min or array.max() > info.max:
            raise bad_request(f"{where}: a value is outside {spec.dtype}'s range [{info.min}, {info.max}]; "
                              f"{expected(spec)}")
        return array.astype(spec.dtype, copy=False)
    if spec.dtype == "bool":
        if kind != "b":
            raise bad_request(f"{where}: wrong dtype, true/false expected (found {_describe_kind(array.dtype)}); "
                              f"{expected(spec)}")
        return array
    if kind not in "US":
        raise bad_request(f"{where}: wrong dtype, strings expected (found {_describe_kind(array.dtype)}); "
                          f"{expected(spec)}")
    return np.vectorize(lambda s: s.encode() if isinstance(s, str) else s, otypes=[object])(array)


def checked(array: np.ndarray, spec: TensorSpec, *, where: str) -> np.ndarray:
    """The rank and every fixed dimension after the batch must match the signature."""
    if array.ndim != len(spec.shape):
        raise bad_request(f"{where}: wrong rank, got shape {list(array.shape)}; {expected(spec)}")
    if array.shape[0] == 0:
        raise bad_request(f"{where}: empty batch, at least one instance is needed")
    for got, want in zip(array.shape[1:], spec.shape[1:]):
        if want != -1 and got != want:
            raise bad_request(f"{where}: wrong shape {list(array.shape)}; {expected(spec)}")
    return array


def limit_listed(value: Any, spec: TensorSpec, max_rows: int, *, where: str) -> None:
    """The instance count of nested lists for one input, checked before their array is built (a flat list
    for an input of rank 2 or more is a wrong rank, which from_json names)."""
    if isinstance(value, list) and value and (len(spec.shape) == 1 or isinstance(value[0], (list, dict))):
        limit_rows(len(value), max_rows, where=where)


def limit_rows(count: int, max_rows: int, *, where: str) -> None:
    """Called with the count a request states or lists before its arrays are built, and by batch()."""
    if count > max_rows:
        raise bad_request(f"{where}: too many instances, {count} > limit {max_rows}")


def batch(arrays: dict[str, np.ndarray], signature: Signature, *, max_rows: int, where: str) -> list[np.ndarray]:
    """The model's inputs in signature order; every input present and all with the same batch size."""
    if len(arrays) == 1 and len(signature.inputs) == 1 and signature.inputs[0].name in arrays:
        (array,) = arrays.values()      # the common one-input case, without the set arithmetic
        limit_rows(len(array), max_rows, where=where)
        return [array]
    unknown = sorted(set(arrays) - {t.name for t in signature.inputs})
    if unknown:
        raise bad_request(f"{where}: unknown input {unknown[0]!r}; the model's inputs are "
                          f"{', '.join(expected(t) for t in signature.inputs)}")
    missing = [t for t in signature.inputs if t.name not in arrays]
    if missing:
        raise bad_request(f"{where}: missing {expected(missing[0])}")
    ordered = [arrays[t.name] for t in signature.inputs]
    sizes = {t.name: len(a) for t, a in zip(signature.inputs, ordered)}
    if len(set(sizes.values())) != 1:
        raise bad_request(f"{where}: inputs differ in batch size {sizes}; each instance needs every input")
    limit_rows(len(ordered[0]), max_rows, where=where)
    return ordered


def rows_from_named(instances: Sequence[Any], feature_names: Sequence[str], input_name: str) -> list[Any]:
    """TF Serving's row format for a table also allows {"<feature>": value, ...} or {"<input>": row}."""
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
    return {"b": "booleans", "U": "strings", "S": "bytes", "O": "mixed values or nulls",
            "f": "fractional numbers", "i": "integers", "u": "integers"}.get(dtype.kind, str(dtype))
