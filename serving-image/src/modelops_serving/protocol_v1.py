"""TF Serving's REST API: `POST /v1/models/NAME:predict` and the feedback call beside it."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import bad_request
from .tensors import INPUT_NAME, checked_rows, rows_from_named


def parse_predict(body: Any, *, width: int, max_rows: int, feature_names: Sequence[str]) -> tuple[np.ndarray, str]:
    """Rows from {"instances": [...]} (row format) or {"inputs": ...} (columnar), and the reply's key."""
    if not isinstance(body, dict):
        raise bad_request("body: expected a JSON object with \"instances\" or \"inputs\"")
    has_instances, has_inputs = "instances" in body, "inputs" in body
    if has_instances == has_inputs:
        raise bad_request("body: give exactly one of \"instances\" (row format) or \"inputs\" (columnar format)")
    if has_instances:
        instances = body["instances"]
        if isinstance(instances, list):
            instances = rows_from_named(instances, feature_names, INPUT_NAME)
        return checked_rows(instances, width=width, max_rows=max_rows, where="instances"), "predictions"
    inputs = body["inputs"]
    if isinstance(inputs, dict):
        if set(inputs) != {INPUT_NAME}:
            raise bad_request(f"inputs: the model has one input named {INPUT_NAME!r}, got {sorted(inputs)[:5]}")
        inputs = inputs[INPUT_NAME]
    return checked_rows(inputs, width=width, max_rows=max_rows, where="inputs"), "outputs"


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
