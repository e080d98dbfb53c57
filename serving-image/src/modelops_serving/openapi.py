"""The OpenAPI document of the server's routes (served at GET /openapi.json)."""
from __future__ import annotations

from typing import Any

from modelops_contracts.signature import Signature, TensorSpec, tabular

from .protocol_v2 import DATATYPES

_ERROR = {"description": "the problem, named", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}
_JSON = {"content": {"application/json": {"schema": {"type": "object"}}}}
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


_JSON_TYPES = {"bool": "boolean", "string": "string"}


def _batch(spec: TensorSpec) -> dict[str, Any]:
    """Nested arrays, one level per dimension, sized where the signature fixes the size."""
    schema: dict[str, Any] = {"type": _JSON_TYPES.get(spec.dtype, "number")}
    for i, size in reversed(list(enumerate(spec.shape))):
        schema = {"type": "array", "items": schema, "minItems": 1}
        if i > 0 and size != -1:
            schema.update(minItems=size, maxItems=size)
    return schema


def _instances(signature: Signature) -> dict[str, Any]:
    if len(signature.inputs) == 1:
        return _batch(signature.inputs[0])
    item = {"type": "object", "required": [t.name for t in signature.inputs],
            "properties": {t.name: _batch(t)["items"] for t in signature.inputs}}
    return {"type": "array", "minItems": 1, "items": item}


def _columns(signature: Signature) -> dict[str, Any]:
    named = {"type": "object", "required": [t.name for t in signature.inputs],
             "properties": {t.name: _batch(t) for t in signature.inputs}}
    return {"oneOf": [_batch(signature.inputs[0]), named]} if len(signature.inputs) == 1 else named


def _op(summary: str, request: dict[str, Any] | None = None, params: list | None = None,
        ok: str = "success", extra: tuple[int, ...] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": ok, **_JSON}}}
    for code in extra:
        op["responses"][str(code)] = _ERROR
    if params:
        op["parameters"] = params
    if request:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": request}}}
    return op


def build_openapi(model_name: str, signature: Signature | None) -> dict[str, Any]:
    """The routes, with request schemas drawn from the model's signature (a placeholder until it loads)."""
    signature = signature or tabular(1, 1)
    instances = _instances(signature)
    predict = {"type": "object", "properties": {"instances": instances, "inputs": _columns(signature)}}
    feedback = {"type": "object", "required": ["truth"], "properties": {
        "id": {"type": "string"}, "instances": instances, "truth": {"type": "array", "items": {}}}}
    tensor = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
        "name": {"type": "string", "enum": [t.name for t in signature.inputs]},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": sorted({DATATYPES[t.dtype] for t in signature.inputs})},
        "data": {"type": "array", "items": {}}, "parameters": {"type": "object"}}}
    infer = {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "inputs": {"type": "array", "items": tensor, "minItems": 1},
        "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "enum": [t.name for t in signature.outputs]}}}}}}
    bad = (400, 404, 413, 503)
    feedback_op = _op("ground truth for a prediction", feedback, _NAME, extra=bad)
    feedback_op["responses"]["202"] = {"description": "the replica that made the prediction is gone: "
                                                      "the truth is kept unjoined", **_JSON}
    return {
        "openapi": "3.0.3",
        "info": {"title": f"modelops serving: {model_name}", "version": "v1alpha1"},
        "paths": {
            "/v1/models/{name}": {"get": _op("model status (TF Serving)", params=_NAME, extra=(404,))},
            "/v1/models/{name}:predict": {"post": _op("predict (TF Serving REST)", predict, _NAME, extra=bad)},
            "/v1/models/{name}:feedback": {"post": feedback_op},
            "/v1/live": {"get": _op("this replica's live figures over its window (LiveFigures)", extra=(503,))},
            "/v2": {"get": _op("server metadata (Open Inference Protocol)")},
            "/v2/health/live": {"get": _op("liveness probe")},
            "/v2/health/ready": {"get": _op("readiness probe", extra=(503,))},
            "/v2/models/{name}": {"get": _op("model metadata", params=_NAME, extra=(404,))},
            "/v2/models/{name}/ready": {"get": _op("model readiness", params=_NAME, extra=(404, 503))},
            "/v2/models/{name}/infer": {"post": _op("inference (Open Inference Protocol)", infer, _NAME, extra=bad)},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": _op("this document")},
        },
    }
