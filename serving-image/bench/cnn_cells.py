"""The benchmark's image model and its workloads: a cnn-classifier trained by the training image on
builtin:digits-images (uint8 [n, 8, 8, 1], int8 TFLite), driven with 1- and 32-image bodies over TF
Serving REST, V2 JSON, V2 binary and gRPC (ghz, the gRPC load tool, when it is installed).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROTO = REPO / "serving-image" / "proto" / "inference.proto"
V1_PATH = "/v1/models/digits:predict"
V2_PATH = "/v2/models/digits/infer"
GRPC = "Open Inference gRPC, raw"


def cnn_model(cache: Path) -> Path:
    """Trained and compressed once by the training image's own stages, then cached."""
    root = cache / "bench-serving" / "digits-cnn"
    version = root / "ml" / "digits" / "v1"
    if not (version / "model.tflite").exists():
        shutil.rmtree(root, ignore_errors=True)
        sys.path.insert(0, str(REPO / "tests" / "component"))
        from tensor_models import train_and_compress
        train_and_compress(root, "int8", template="cnn-classifier")
    return version


def images(n: int) -> np.ndarray:
    from modelops_training import formats
    return formats.digits_images().features[:n]


def write_workloads(work: Path, workload) -> list:
    """(REST JSON for every server; V2 JSON, V2 binary and gRPC for ours) × 1 and 32 images."""
    out = []
    for n in (1, 32):
        batch = images(n)
        rest = work / f"cnn-v1-{n}.json"
        rest.write_text(json.dumps({"instances": batch.tolist()}))
        out.append(workload("TF Serving REST, JSON", n, V1_PATH, rest))
        v2 = work / f"cnn-v2-{n}.json"
        v2.write_text(json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": list(batch.shape),
                                              "data": batch.ravel().tolist()}]}))
        out.append(workload("Open Inference V2, JSON", n, V2_PATH, v2))
        header = json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": list(batch.shape),
                                         "parameters": {"binary_data_size": batch.size}}],
                             "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}).encode()
        binary = work / f"cnn-v2-{n}.bin"
        binary.write_bytes(header + batch.tobytes())
        out.append(workload("Open Inference V2, binary", n, V2_PATH, binary, str(len(header))))
        out.append(workload(GRPC, n, "grpc", _grpc_request(work, batch)))
    return out


def _grpc_request(work: Path, batch: np.ndarray) -> Path:
    from modelops_serving import inference_pb2 as pb
    request = pb.ModelInferRequest(model_name="digits")
    request.inputs.add(name="image", datatype="UINT8", shape=list(batch.shape))
    request.raw_input_contents.append(batch.tobytes())
    path = work / f"cnn-grpc-{len(batch)}.bin"
    path.write_bytes(request.SerializeToString())
    return path


def ghz() -> str | None:
    found = shutil.which("ghz") or str(Path.home() / "go" / "bin" / "ghz")
    return found if os.access(found, os.X_OK) else None


def run_ghz(port: int, body: Path, seconds: float, connections: int) -> tuple[float, float, float, int]:
    """requests/s, p50 ms, p99 ms, errors: `connections` concurrent calls for `seconds` on 127.0.0.1."""
    done = subprocess.run([ghz(), "--insecure", "--proto", str(PROTO), "--call",
                           "inference.GRPCInferenceService.ModelInfer", "--binary-file", str(body),
                           "-c", str(connections), "--connections", str(min(connections, 4)),
                           "-z", f"{max(1, round(seconds))}s", "--format", "json", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    report = json.loads(done.stdout)
    latency = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    # When the duration ends ghz closes its own connections under the calls in flight (one per connection,
    # "use of closed network connection"): the tool stopping, not the server failing.
    errors = sum(n for message, n in (report.get("errorDistribution") or {}).items()
                 if "use of closed network connection" not in message)
    return report["rps"], latency.get(50, float("nan")), latency.get(99, float("nan")), errors
