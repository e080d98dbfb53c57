"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`) on its own port.

It runs on the HTTP server's event loop and goes through the same data plane as the REST routes:
the app's model checks, batcher, request limits, metrics, prediction ids and drain. A message is
turned into the V2 request the HTTP route decodes (raw contents become the binary extension's
bytes), so both transports validate and refuse in the same words.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import grpc
import numpy as np

from . import inference_pb2 as pb
from . import protocol_v2
from .errors import HttpError

if TYPE_CHECKING:
    from .app import ServingApp

log = logging.getLogger(__name__)
SERVICE = "inference.GRPCInferenceService"
_STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
           503: grpc.StatusCode.UNAVAILABLE}
# Which typed `contents` field carries each datatype (FP16 has none: it travels as raw bytes only).
_CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT8": "int_contents", "INT16": "int_contents",
             "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "UINT32": "uint_contents", "UINT64": "uint64_contents", "BOOL": "bool_contents",
             "BYTES": "bytes_contents"}


def _parameter(p: "pb.InferParameter") -> Any:
    choice = p.WhichOneof("parameter_choice")
    return getattr(p, choice) if choice else None


def _input(tensor, raw: bytes | None) -> tuple[dict[str, Any], bytes]:
    """One input as the V2 JSON form describes it, plus its raw bytes when it came as raw contents."""
    spec: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
    if raw is not None:
        spec["parameters"] = {"binary_data_size": len(raw)}
        return spec, raw
    field = _CONTENTS.get(tensor.datatype)
    values = list(getattr(tensor.contents, field)) if field else []
    spec["data"] = [v.decode("utf-8", "replace") for v in values] if tensor.datatype == "BYTES" else values
    return spec, b""


def to_v2(request: "pb.ModelInferRequest") -> tuple[dict[str, Any], bytes]:
    raws = list(request.raw_input_contents)
    if raws and len(raws) != len(request.inputs):
        raise HttpError(400, f"raw_input_contents: {len(raws)} entries for {len(request.inputs)} inputs; "
                             f"give raw contents for every input or for none")
    inputs, binary = [], []
    for i, tensor in enumerate(request.inputs):
        spec, raw = _input(tensor, raws[i] if raws else None)
        inputs.append(spec)
        binary.append(raw)
    outputs = [{"name": o.name} for o in request.outputs]
    v2 = {"id": request.id or None, "inputs": inputs, "outputs": outputs or None,
          "parameters": {k: _parameter(v) for k, v in request.parameters.items()}}
    return v2, b"".join(binary)


class InferenceService:
    def __init__(self, app: "ServingApp"):
        self.app = app

    async def _call(self, label: str, context, work: Callable[[], Awaitable[Any]]):
        started, status = time.perf_counter(), 200
        try:
            return await work()
        except HttpError as e:
            status = e.status
            await context.abort(_STATUS.get(e.status, grpc.StatusCode.UNKNOWN), e.message)
        except Exception as e:  # a bug, not bad input: logged; the client gets INTERNAL, the server carries on
            status = 500
            log.exception("internal error in gRPC %s", label)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}")
        finally:
            self.app.metrics.observe_request(f"grpc:{label}", status, time.perf_counter() - started)

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.app.ready)

    async def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name="modelops-serving", version="0.1.0", extensions=["binary_tensor_data"])

    async def ModelReady(self, request, context):
        async def work():
            self.app.serving_model(request.name, request.version or None)
            return pb.ModelReadyResponse(ready=self.app.ready)
        return await self._call("ModelReady", context, work)

    async def ModelMetadata(self, request, context):
        async def work():
            m = self.app.serving_model(request.name, request.version or None)
            meta = protocol_v2.metadata(m.name, m.version, m.runtime.platform, m.signature)
            tensors = {k: [pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta[k]] for k in ("inputs", "outputs")}
            return pb.ModelMetadataResponse(name=m.name, versions=meta["versions"], platform=m.runtime.platform,
                                            **tensors)
        return await self._call("ModelMetadata", context, work)

    async def ModelInfer(self, request, context):
        async def work():
            return await self._infer(request)
        return await self._call("ModelInfer", context, work)

    async def _infer(self, request: "pb.ModelInferRequest") -> "pb.ModelInferResponse":
        app = self.app
        m = app.serving_model(request.model_name, request.model_version or None)
        v2, binary = to_v2(request)
        parsed = protocol_v2.parse_request(v2, binary, signature=m.signature, max_rows=app.settings.max_instances)
        outputs = await app.infer(parsed.inputs)
        prediction_id = app.remember(outputs, parsed.inputs)
        response = pb.ModelInferResponse(model_name=m.name, model_version=m.version, id=parsed.id or prediction_id)
        response.parameters["prediction_id"].string_param = prediction_id
        for index, _ in parsed.outputs:
            spec, out = m.signature.outputs[index], outputs[index]
            response.outputs.add(name=spec.name, datatype=protocol_v2.DATATYPES[spec.dtype], shape=list(out.shape))
            response.raw_output_contents.append(protocol_v2.raw_bytes(np.asarray(out), spec))
        return response


def _handlers(service: InferenceService) -> grpc.GenericRpcHandler:
    methods = {"ServerLive": pb.ServerLiveRequest, "ServerReady": pb.ServerReadyRequest,
               "ServerMetadata": pb.ServerMetadataRequest, "ModelReady": pb.ModelReadyRequest,
               "ModelMetadata": pb.ModelMetadataRequest, "ModelInfer": pb.ModelInferRequest}
    return grpc.method_handlers_generic_handler(SERVICE, {
        name: grpc.unary_unary_rpc_method_handler(getattr(service, name), request_deserializer=message.FromString,
                                                  response_serializer=lambda r: r.SerializeToString())
        for name, message in methods.items()})


async def start(app: "ServingApp") -> grpc.aio.Server:
    """Listen on settings.grpc_port; the caller stops it (with a grace period) on shutdown."""
    s = app.settings
    # Port sharing only among our own workers: otherwise a second server on the port would be an error.
    server = grpc.aio.server(maximum_concurrent_rpcs=s.max_connections, options=[
        ("grpc.max_receive_message_length", s.max_body_bytes), ("grpc.so_reuseport", 1 if s.sibling_dir else 0)])
    server.add_generic_rpc_handlers((_handlers(InferenceService(app)),))
    address = f"{s.host}:{s.grpc_port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as e:
        raise OSError(f"gRPC: cannot listen on {address}: {e}") from None
    if bound == 0:
        raise OSError(f"gRPC: cannot listen on {address}")
    await server.start()
    log.info("gRPC (Open Inference Protocol) on %s", address)
    return server
