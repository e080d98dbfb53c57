"""The Open Inference Protocol (KServe V2) over HTTP, with Triton's binary tensor extension.

With the extension the body is a JSON header of `Inference-Header-Content-Length` bytes followed
by raw little-endian tensor bytes; `tritonclient.http` uses it by default.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from .errors import bad_request
from .tensors import INPUT_NAME, OUTPUT_NAME, checked_array

DATATYPE = "FP32"


def metadata(name: str, version: str, platform: str, width: int, outputs: int) -> dict[str, Any]:
    return {"name": name, "versions": [version] if version else [], "platform": platform,
            "inputs": [{"name": INPUT_NAME, "datatype": DATATYPE, "shape": [-1, width]}],
            "outputs": [{"name": OUTPUT_NAME, "datatype": DATATYPE, "shape": [-1, outputs]}]}


class InferRequest:
    __slots__ = ("id", "rows", "binary_output")

    def __init__(self, request_id: str | None, rows: np.ndarray, binary_output: bool):
        self.id, self.rows, self.binary_output = request_id, rows, binary_output


def parse_infer(body: bytes, header_length: str | None, *, width: int, max_rows: int) -> InferRequest:
    binary = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise bad_request("Inference-Header-Content-Length: not an integer") from None
        if not 0 < n <= len(body):
            raise bad_request(f"Inference-Header-Content-Length: {n} is outside the body's {len(body)} bytes")
        body, binary = body[:n], body[n:]
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"body: malformed JSON ({e})") from None
    if not isinstance(request, dict):
        raise bad_request("body: expected a JSON object with \"inputs\"")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request("id: expected a string")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise bad_request(f"inputs: the model takes exactly one input tensor named {INPUT_NAME!r}")
    rows = _tensor(inputs[0], binary, width=width, max_rows=max_rows)
    return InferRequest(request_id, rows, _wants_binary(request))


def _tensor(spec: dict[str, Any], binary: bytes, *, width: int, max_rows: int) -> np.ndarray:
    name = spec.get("name")
    if name != INPUT_NAME:
        raise bad_request(f"inputs[0].name: unknown input {name!r}, the model's input is {INPUT_NAME!r}")
    if spec.get("datatype") != DATATYPE:
        raise bad_request(f"inputs[0].datatype: wrong dtype {spec.get('datatype')!r}, the model takes {DATATYPE}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise bad_request("inputs[0].shape: expected a list of non-negative integers")
    if len(shape) != 2:
        raise bad_request(f"inputs[0].shape: wrong rank, expected [n, {width}], got {shape}")
    count = shape[0] * shape[1]
    parameters = spec.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool):
            raise bad_request("inputs[0].parameters.binary_data_size: expected an integer")
        if "data" in spec:
            raise bad_request("inputs[0]: give either data or binary_data_size, not both")
        if size != len(binary) or size != count * 4:
            raise bad_request(f"inputs[0]: binary_data_size {size} does not match shape {shape} "
                              f"({count * 4} bytes) and the {len(binary)} bytes sent")
        array = np.frombuffer(binary, dtype="<f4").reshape(shape)
        return checked_array(array, width=width, max_rows=max_rows, where="inputs[0]")
    if binary:
        raise bad_request("body: binary data after the JSON header, but no input names a binary_data_size")
    data = spec.get("data")
    if not isinstance(data, list):
        raise bad_request("inputs[0].data: expected a list of numbers")
    if count == 0:
        raise bad_request("inputs[0]: empty batch, at least one row is needed")
    flat = _flat_numbers(data, count, shape)
    return checked_array(flat.reshape(shape), width=width, max_rows=max_rows, where="inputs[0]")


def _flat_numbers(data: list, count: int, shape: list[int]) -> np.ndarray:
    try:
        array = np.array(data)
    except (ValueError, TypeError, OverflowError):
        raise bad_request("inputs[0].data: ragged or mixed nesting") from None
    if array.dtype.kind not in "fiu":
        raise bad_request("inputs[0].data: wrong dtype, numbers expected")
    if array.size != count:
        raise bad_request(f"inputs[0].data: {array.size} values do not fill shape {shape}")
    return array


def _wants_binary(request: dict[str, Any]) -> bool:
    outputs = request.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise bad_request("outputs: expected a list of objects")
        for o in outputs:
            if o.get("name") != OUTPUT_NAME:
                raise bad_request(f"outputs: unknown output {o.get('name')!r}, the model's output is {OUTPUT_NAME!r}")
        if outputs:
            params = outputs[0].get("parameters") or {}
            return bool(isinstance(params, dict) and params.get("binary_data"))
    params = request.get("parameters") or {}
    return bool(isinstance(params, dict) and params.get("binary_data_output"))


def encode_infer(name: str, version: str, response_id: str, out: np.ndarray, binary: bool,
                 prediction_id: str) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when binary data follows it."""
    tensor: dict[str, Any] = {"name": OUTPUT_NAME, "datatype": DATATYPE, "shape": list(out.shape)}
    raw = b""
    if binary:
        raw = np.ascontiguousarray(out, dtype="<f4").tobytes()
        tensor["parameters"] = {"binary_data_size": len(raw)}
    else:
        tensor["data"] = out.ravel()
    header = orjson.dumps({"model_name": name, "model_version": version, "id": response_id,
                           "parameters": {"prediction_id": prediction_id}, "outputs": [tensor]},
                          option=orjson.OPT_SERIALIZE_NUMPY)
    return (header + raw, len(header)) if binary else (header, None)
