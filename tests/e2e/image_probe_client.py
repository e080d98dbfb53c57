"""One image batch sent to an image model's Service both ways, from inside a pod (the serving image's
Python: the standard library, grpcio and the server's own generated Open Inference messages).

Open Inference V2 with the binary tensor extension (the uint8 pixels as raw bytes, the output asked back
as raw FP32), then the same batch through gRPC `ModelInfer` with raw contents, and the model's metadata
over gRPC. Prints one JSON object with what each call answered.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import struct

import grpc
from modelops_serving import inference_pb2 as pb

SERVICE = "/inference.GRPCInferenceService/"


def v2_binary(host: str, model: str, name: str, shape: list[int], pixels: bytes) -> dict:
    header = json.dumps({
        "inputs": [{"name": name, "shape": shape, "datatype": "UINT8",
                    "parameters": {"binary_data_size": len(pixels)}}],
        "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
    }).encode()
    conn = http.client.HTTPConnection(host, 80, timeout=30)
    try:
        conn.request("POST", f"/v2/models/{model}/infer", body=header + pixels, headers={
            "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))})
        resp = conn.getresponse()
        raw, split = resp.read(), resp.getheader("Inference-Header-Content-Length")
    finally:
        conn.close()
    if resp.status != 200 or split is None:
        return {"status": resp.status, "body": raw[:300].decode(errors="replace")}
    meta, data = json.loads(raw[:int(split)]), raw[int(split):]
    return {"status": resp.status, "outputs": meta["outputs"],
            "output": list(struct.unpack(f"<{len(data) // 4}f", data))}


def grpc_calls(host: str, model: str, name: str, shape: list[int], pixels: bytes) -> dict:
    with grpc.insecure_channel(f"{host}:9000") as channel:
        def call(method: str, request, reply):
            return channel.unary_unary(SERVICE + method, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=reply.FromString)(request, timeout=30)
        meta = call("ModelMetadata", pb.ModelMetadataRequest(name=model), pb.ModelMetadataResponse)
        request = pb.ModelInferRequest(model_name=model, raw_input_contents=[pixels])
        request.inputs.add(name=name, datatype="UINT8", shape=shape)
        reply = call("ModelInfer", request, pb.ModelInferResponse)
    out = reply.outputs[0]
    data = reply.raw_output_contents[0]
    return {"metadata": {"inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                                    for t in meta.inputs]},
            "model_version": reply.model_version,
            "outputs": [{"name": out.name, "datatype": out.datatype, "shape": list(out.shape)}],
            "output": list(struct.unpack(f"<{len(data) // 4}f", data))}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help="the model's input name")
    p.add_argument("--shape", required=True, help="the batch's shape as a JSON list")
    p.add_argument("--pixels", required=True, help="the batch's uint8 pixels, base64")
    args = p.parse_args()
    shape, pixels = json.loads(args.shape), base64.b64decode(args.pixels)
    print(json.dumps({"v2_binary": v2_binary(args.host, args.model, args.input, shape, pixels),
                      "grpc": grpc_calls(args.host, args.model, args.input, shape, pixels)}), flush=True)


if __name__ == "__main__":
    main()
