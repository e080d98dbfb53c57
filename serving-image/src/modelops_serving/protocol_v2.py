"""The Open Inference Protocol (KServe V2) over HTTP, with Triton's binary tensor extension.

With the extension the body is a JSON header of `Inference-Header-Content-Length` bytes followed
by each binary input's raw little-endian bytes, in the order the inputs are listed;
`tritonclient.http` uses it by default. The transport-free parts (datatypes, raw tensors,
output selection) are shared with the gRPC service.
"""
from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson
from modelops_contracts.signature import Signature, TensorSpec

from . import jsonnum
from .errors import bad_request
from .tensors import batch, checked, decoded, expected, limit_rows, typed

DATATYPES = {"float32": "FP32", "float16": "FP16", "float64": "FP64", "int8": "INT8", "uint8": "UINT8",
             "int16": "INT16", "int32": "INT32", "int64": "INT64", "bool": "BOOL", "string": "BYTES"}
# Wire byte order is little-endian; built once, since np.dtype() costs more than parsing a small tensor.
_WIRE = {name: np.dtype(name).newbyteorder("<") for name in DATATYPES if name != "string"}


def tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": DATATYPES[spec.dtype], "shape": list(spec.shape)}


def metadata(name: str, version: str, platform: str, signature: Signature) -> dict[str, Any]:
    return {"name": name, "versions": [version] if version else [], "platform": platform,
            "inputs": [tensor_metadata(t) for t in signature.inputs],
            "outputs": [tensor_metadata(t) for t in signature.outputs]}


class InferRequest:
    __slots__ = ("id", "inputs", "outputs")

    def __init__(self, request_id: str | None, inputs: list[np.ndarray], outputs: list[tuple[int, bool]]):
        # outputs: (index in the signature's outputs, send as binary) for each requested output
        self.id, self.inputs, self.outputs = request_id, inputs, outputs


def parse_infer(body: bytes, header_length: str | None, *, signature: Signature, max_rows: int) -> InferRequest:
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
    return parse_request(request, binary, signature=signature, max_rows=max_rows)


def parse_request(request: dict[str, Any], binary: bytes, *, signature: Signature, max_rows: int) -> InferRequest:
    """A decoded request (from JSON, or built from a gRPC message) and the binary data after it."""
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request("id: expected a string")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
        raise bad_request(f"inputs: expected a list of tensors; the model's inputs are "
                          f"{', '.join(expected(t) for t in signature.inputs)}")
    arrays, offset = {}, 0
    for i, spec in enumerate(inputs):
        name, array, offset = _input(spec, i, signature, binary, offset, max_rows)
        if name in arrays:
            raise bad_request(f"inputs[{i}].name: input {name!r} is given twice")
        arrays[name] = array
    if offset != len(binary):
        raise bad_request(f"body: {len(binary) - offset} bytes of binary data after the JSON header are not "
                          f"claimed by any input's binary_data_size")
    ordered = batch(arrays, signature, max_rows=max_rows, where="inputs")
    return InferRequest(request_id, ordered, selected_outputs(request, signature))


def _input(spec: dict[str, Any], i: int, signature: Signature, binary: bytes, offset: int, max_rows: int):
    where = f"inputs[{i}]"
    name = spec.get("name")
    model_spec = signature.input(name) if isinstance(name, str) else None
    if model_spec is None:
        raise bad_request(f"{where}.name: unknown input {name!r}; the model's inputs are "
                          f"{', '.join(expected(t) for t in signature.inputs)}")
    want = DATATYPES[model_spec.dtype]
    if spec.get("datatype") != want:
        raise bad_request(f"{where}.datatype: wrong dtype {spec.get('datatype')!r}, {expected(model_spec)} "
                          f"(datatype {want})")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise bad_request(f"{where}.shape: expected a list of non-negative integers")
    if len(shape) == len(model_spec.shape):   # the stated batch size, before any data is decoded
        limit_rows(shape[0], max_rows, where=where)
    count = math.prod(shape)
    parameters = spec.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad_request(f"{where}.parameters.binary_data_size: expected a non-negative integer")
        if "data" in spec:
            raise bad_request(f"{where}: give either data or binary_data_size, not both")
        if offset + size > len(binary):
            raise bad_request(f"{where}: binary_data_size {size} runs past the {len(binary)} bytes sent")
        array = raw_tensor(binary[offset:offset + size], model_spec, shape, where=where)
        return name, checked(array, model_spec, where=where), offset + size
    data = spec.get("data")
    if not isinstance(data, list):
        raise bad_request(f"{where}.data: expected a list of values (or parameters.binary_data_size)")
    return name, _json_tensor(data, model_spec, shape, count, where), offset


def _json_tensor(data: list, spec: TensorSpec, shape: list[int], count: int, where: str) -> np.ndarray:
    if count == 0:
        raise bad_request(f"{where}: empty batch, at least one instance is needed")
    item = tuple(shape[1:])
    array = jsonnum.integers(data, item, spec.dtype, flat=True) if shape else None
    if array is None and shape:
        array = jsonnum.integers(data, item, spec.dtype)
    array = typed(array, spec, where=f"{where}.data") if array is not None else \
        decoded(data, spec, where=f"{where}.data")
    if array.size != count:
        raise bad_request(f"{where}.data: {array.size} values do not fill shape {shape}")
    return checked(array.reshape(shape), spec, where=where)


def raw_tensor(raw: bytes, spec: TensorSpec, shape: list[int], *, where: str) -> np.ndarray:
    """A tensor from its raw little-endian bytes (the binary extension, and gRPC's raw contents)."""
    count = math.prod(shape)
    if spec.dtype == "string":
        return _raw_strings(raw, count, where).reshape(shape)
    dtype = _WIRE[spec.dtype]
    if len(raw) != count * dtype.itemsize:
        raise bad_request(f"{where}: {len(raw)} bytes do not match shape {shape} of {spec.dtype} "
                          f"({count * dtype.itemsize} bytes)")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    if spec.dtype in ("float16", "float32", "float64") and not np.isfinite(array).all():
        raise bad_request(f"{where}: NaN or Inf is not a valid value for input {spec.name!r}")
    return array


def _raw_strings(raw: bytes, count: int, where: str) -> np.ndarray:
    """BYTES elements, each a 4-byte little-endian length and then that many bytes."""
    items, offset = [], 0
    for _ in range(count):
        if offset + 4 > len(raw):
            raise bad_request(f"{where}: binary BYTES data ends after {len(items)} of {count} elements")
        (n,) = struct.unpack_from("<I", raw, offset)
        items.append(raw[offset + 4:offset + 4 + n])
        offset += 4 + n
    if offset != len(raw):
        raise bad_request(f"{where}: binary BYTES data has {len(raw) - offset} bytes past its {count} elements")
    return np.array(items, dtype=object)


def selected_outputs(request: dict[str, Any], signature: Signature) -> list[tuple[int, bool]]:
    """Which outputs to return, each as (signature index, binary): all of them unless `outputs` names some."""
    params = request.get("parameters") or {}
    all_binary = bool(isinstance(params, dict) and params.get("binary_data_output"))
    outputs = request.get("outputs")
    if outputs is None or outputs == []:
        return [(i, all_binary) for i in range(len(signature.outputs))]
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise bad_request("outputs: expected a list of objects")
    names = [t.name for t in signature.outputs]
    chosen = []
    for o in outputs:
        if o.get("name") not in names:
            raise bad_request(f"outputs: unknown output {o.get('name')!r}, the model's outputs are {names}")
        p = o.get("parameters") or {}
        chosen.append((names.index(o["name"]), bool(isinstance(p, dict) and p.get("binary_data", all_binary))))
    return chosen


def encode_infer(name: str, version: str, response_id: str, signature: Signature, outputs: list[np.ndarray],
                 chosen: list[tuple[int, bool]], prediction_id: str) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when binary data follows it."""
    tensors, raws = [], []
    for index, binary in chosen:
        spec, out = signature.outputs[index], outputs[index]
        tensor: dict[str, Any] = {"name": spec.name, "datatype": DATATYPES[spec.dtype], "shape": list(out.shape)}
        if binary:
            raw = raw_bytes(out, spec)
            raws.append(raw)
            tensor["parameters"] = {"binary_data_size": len(raw)}
        else:
            tensor["data"] = [v.decode("utf-8", "replace") for v in out.ravel()] if spec.dtype == "string" \
                else out.ravel()
        tensors.append(tensor)
    header = orjson.dumps({"model_name": name, "model_version": version, "id": response_id,
                           "parameters": {"prediction_id": prediction_id}, "outputs": tensors},
                          option=orjson.OPT_SERIALIZE_NUMPY)
    return (header + b"".join(raws), len(header)) if raws else (header, None)


def raw_bytes(out: np.ndarray, spec: TensorSpec) -> bytes:
    if spec.dtype == "string":
        return b"".join(struct.pack("<I", len(v)) + v for v in out.ravel())
    return np.ascontiguousarray(out, dtype=_WIRE[spec.dtype]).tobytes()
