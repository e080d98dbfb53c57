"""TF Serving's REST API: `POST /v1/models/NAME:predict` and the feedback call beside it.

Row format: `{"instances": [...]}`, one entry per example: the bare value for a one-input model,
or an object keyed by input name; answered as `{"predictions": [...]}`, one entry per example
(an object keyed by output name when the model has several outputs). Columnar format:
`{"inputs": ...}`, the bare batch for a one-input model or an object of batches keyed by input
name; answered as `{"outputs": ...}` in the same shape.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from modelops_contracts.signature import Signature

from . import jsonnum
from .errors import bad_request
from .tensors import batch, checked, expected, from_json, limit_listed, limit_rows, rows_from_named, typed


def rows_from_text(raw: bytes, *, signature: Signature, max_rows: int) -> list[np.ndarray] | None:
    """A `{"instances": [...]}` body of integers for a one-input integer model (images), decoded from its
    text (jsonnum.instances_text); None for any other body, which `parse_predict` decodes."""
    if len(signature.inputs) != 1:
        return None
    spec = signature.inputs[0]
    array = jsonnum.instances_text(raw, tuple(spec.item_shape), spec.dtype,
                                   counted=lambda n: limit_rows(n, max_rows, where="instances"))
    if array is None:
        return None
    return batch({spec.name: checked(typed(array, spec, where="instances"), spec, where="instances")}, signature,
                 max_rows=max_rows, where="instances")


def parse_predict(body: Any, *, signature: Signature, max_rows: int,
                  feature_names: Sequence[str]) -> tuple[list[np.ndarray], str]:
    """The model's input arrays from either format, and the reply's key."""
    if not isinstance(body, dict):
        raise bad_request("body: expected a JSON object with \"instances\" or \"inputs\"")
    has_instances, has_inputs = "instances" in body, "inputs" in body
    if has_instances == has_inputs:
        raise bad_request("body: give exactly one of \"instances\" (row format) or \"inputs\" (columnar format)")
    if has_instances:
        return _rows(body["instances"], signature, max_rows, feature_names), "predictions"
    return _columns(body["inputs"], signature, max_rows), "outputs"


def _rows(instances: Any, signature: Signature, max_rows: int, feature_names: Sequence[str]) -> list[np.ndarray]:
    if len(signature.inputs) == 1:
        spec = signature.inputs[0]
        if isinstance(instances, list):
            limit_listed(instances, spec, max_rows, where="instances")
            if signature.is_tabular and feature_names:
                instances = rows_from_named(instances, feature_names, spec.name)
            else:
                instances = [i[spec.name] if isinstance(i, dict) and set(i) == {spec.name} else i for i in instances]
        fast = jsonnum.integers(instances, tuple(spec.item_shape), spec.dtype)
        array = checked(typed(fast, spec, where="instances"), spec, where="instances") if fast is not None else \
            from_json(instances, spec, where="instances")
        return batch({spec.name: array}, signature, max_rows=max_rows, where="instances")
    if not isinstance(instances, list) or not instances:
        raise bad_request("instances: expected a non-empty list of objects keyed by input name; the model's "
                          f"inputs are {', '.join(expected(t) for t in signature.inputs)}")
    limit_rows(len(instances), max_rows, where="instances")
    names = [t.name for t in signature.inputs]
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict) or set(instance) != set(names):
            got = sorted(instance) if isinstance(instance, dict) else type(instance).__name__
            raise bad_request(f"instances[{i}]: expected an object with exactly the inputs {names}, got {got}")
    arrays = {t.name: from_json([instance[t.name] for instance in instances], t, where=f"instances[*].{t.name}")
              for t in signature.inputs}
    return batch(arrays, signature, max_rows=max_rows, where="instances")


def _columns(inputs: Any, signature: Signature, max_rows: int) -> list[np.ndarray]:
    if not isinstance(inputs, dict):
        if len(signature.inputs) != 1:
            raise bad_request("inputs: the model has several inputs; give an object keyed by input name: "
                              f"{', '.join(expected(t) for t in signature.inputs)}")
        inputs = {signature.inputs[0].name: inputs}
    arrays = {}
    for name, value in inputs.items():
        spec = signature.input(name)
        if spec is not None:
            limit_listed(value, spec, max_rows, where=f"inputs.{name}")
            arrays[name] = from_json(value, spec, where=f"inputs.{name}")
        else:
            arrays[name] = value    # batch() names the unknown input with the expected ones
    return batch(arrays, signature, max_rows=max_rows, where="inputs")


def encode_predict(key: str, signature: Signature, outputs: list[np.ndarray]) -> dict[str, Any]:
    """The reply's body (before the id is added), in the form matching the request's format."""
    if len(outputs) == 1:
        return {key: outputs[0]}
    names = [t.name for t in signature.outputs]
    if key == "outputs":
        return {key: dict(zip(names, outputs))}
    return {key: [{name: out[i] for name, out in zip(names, outputs)} for i in range(len(outputs[0]))]}


def parse_feedback(body: Any) -> tuple[str | None, Any, Any]:
    """(prediction id, None, truth) or (None, instances body, truth)."""
    if not isinstance(body, dict) or "truth" not in body:
        raise bad_request("body: expected {\"id\": ..., \"truth\": ...} or {\"instances\": [...], \"truth\": [...]}")
    if "id" in body:
        if not isinstance(body["id"], str):
            raise bad_request("id: expected the prediction id string from a predict response")
        return body["id"], None, body["truth"]
    if "instances" in body or "inputs" in body:
        return None, {k: v for k, v in body.items() if k in ("instances", "inputs")}, body["truth"]
    raise bad_request("body: give the prediction \"id\", or the \"instances\" that were predicted")
