"""The OpenAPI document of the server's routes (served at GET /openapi.json)."""
from __future__ import annotations

from typing import Any

from .tensors import INPUT_NAME

_ERROR = {"description": "the problem, named", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}
_JSON = {"content": {"application/json": {"schema": {"type": "object"}}}}
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


def _rows(width: int) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": width, "maxItems": width,
                                                       "items": {"type": "number"}}}


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


def build_openapi(model_name: str, width: int) -> dict[str, Any]:
    rows = _rows(width)
    predict = {"type": "object", "properties": {"instances": rows, "inputs": rows}}
    feedback = {"type": "object", "required": ["truth"], "properties": {
        "id": {"type": "string"}, "instances": rows, "truth": {"type": "array", "items": {}}}}
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string", "enum": [INPUT_NAME]}, "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": ["FP32"]}, "data": {"type": "array", "items": {"type": "number"}}}}
    infer = {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "inputs": {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1}}}
    bad = (400, 404, 413, 503)
    return {
        "openapi": "3.0.3",
        "info": {"title": f"modelops serving: {model_name}", "version": "v1alpha1"},
        "paths": {
            "/v1/models/{name}": {"get": _op("model status (TF Serving)", params=_NAME, extra=(404,))},
            "/v1/models/{name}:predict": {"post": _op("predict (TF Serving REST)", predict, _NAME, extra=bad)},
            "/v1/models/{name}:feedback": {"post": _op("ground truth for a prediction", feedback, _NAME, extra=bad)},
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
