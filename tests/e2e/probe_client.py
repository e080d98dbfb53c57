"""One round of every protocol against a model's Service, from inside a pod (standard library only).

TF Serving REST predict, Open Inference V2 as JSON and with the binary tensor extension (raw FP32
bytes both ways, as tritonclient.http sends them), model metadata, and ground-truth feedback.
Prints one JSON object with what each call answered.
"""
from __future__ import annotations

import argparse
import http.client
import json
import struct


def _call(host: str, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, 80, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _json_call(host: str, method: str, path: str, payload: dict | None = None) -> dict:
    body = json.dumps(payload).encode() if payload is not None else None
    status, _, raw = _call(host, method, path, body, {"Content-Type": "application/json"})
    return {"status": status, "body": json.loads(raw)}


def v2_binary(host: str, model: str, row: list[float]) -> dict:
    header = json.dumps({
        "inputs": [{"name": "features", "shape": [1, len(row)], "datatype": "FP32",
                    "parameters": {"binary_data_size": 4 * len(row)}}],
        "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
    }).encode()
    body = header + struct.pack(f"<{len(row)}f", *row)
    status, headers, raw = _call(host, "POST", f"/v2/models/{model}/infer", body, {
        "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))})
    if status != 200:
        return {"status": status, "body": raw[:300].decode(errors="replace")}
    split = int(headers["inference-header-content-length"])
    meta = json.loads(raw[:split])
    data = raw[split:]
    return {"status": status, "model_version": meta.get("model_version"),
            "output_bytes": meta["outputs"][0]["parameters"]["binary_data_size"],
            "output": list(struct.unpack(f"<{len(data) // 4}f", data))}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--row", required=True, help="one feature row as a JSON list")
    p.add_argument("--truth", required=True, help="its true target as JSON")
    args = p.parse_args()
    row, m = json.loads(args.row), args.model
    result = {
        "predict": _json_call(args.host, "POST", f"/v1/models/{m}:predict", {"instances": [row]}),
        "v2": _json_call(args.host, "POST", f"/v2/models/{m}/infer", {"inputs": [
            {"name": "features", "shape": [1, len(row)], "datatype": "FP32", "data": row}]}),
        "v2_binary": v2_binary(args.host, m, row),
        "metadata": _json_call(args.host, "GET", f"/v2/models/{m}"),
        "feedback": _json_call(args.host, "POST", f"/v1/models/{m}:feedback",
                               {"instances": [row], "truth": [json.loads(args.truth)]}),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
