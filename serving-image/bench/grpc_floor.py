"""How many ModelInfer calls per second grpcio's Python server answers with an empty handler, beside the
whole modelops-serve path over gRPC and over HTTP (V2 JSON), each driven by a C load tool on 127.0.0.1
(h2load for gRPC, wrk for HTTP), so the client's own cost stays small. A measurement, not a test.

The question it answers (issue 11): can any grpcio server reach the requests/s our HTTP path reaches? The
empty handler is grpcio's floor: no decoding, no model, no batcher.

    python serving-image/bench/grpc_floor.py --model-dir DIR [--seconds 8]

Needs h2load (Debian: nghttp2-client) and wrk. Every cell's replies are checked: h2load counts HTTP
statuses only, so a gRPC cell also reads the server's own count of answered calls (modelops-serve's
/metrics, or the empty server's counter) and fails if any call did not succeed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cnn_cells  # noqa: E402

GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"


def empty_server(port: int, counter: Path) -> None:
    """grpc.aio with a ModelInfer that answers an empty response: the least a grpcio call costs."""
    import grpc
    from modelops_serving import inference_pb2 as pb
    answered = 0

    async def infer(request, context):
        nonlocal answered
        answered += 1
        return pb.ModelInferResponse(model_name=request.model_name)

    async def main():
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {
            "ModelInfer": grpc.unary_unary_rpc_method_handler(
                infer, request_deserializer=pb.ModelInferRequest.FromString,
                response_serializer=lambda r: r.SerializeToString())}),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        while True:
            await asyncio.sleep(0.2)
            counter.write_text(str(answered))
    asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def h2load(port: int, body: Path, seconds: float) -> tuple[float, int]:
    """(requests/s, 2xx count) of ModelInfer calls, 4 connections x 2 streams."""
    out = subprocess.run(["h2load", "-c", "4", "-m", "2", "-D", str(round(seconds)), "-d", str(body),
                          "-H", "content-type: application/grpc", "-H", "te: trailers",
                          f"http://127.0.0.1:{port}{GRPC_PATH}"], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))
    return rate, int(re.search(r"status codes: (\d+) 2xx", out).group(1))


def wrk(port: int, body: Path, seconds: float) -> float:
    env = {**os.environ, "BODY": str(body), "HEADER_LENGTH": ""}
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{round(seconds)}s", "-s", str(HERE / "post.lua"),
                          f"http://127.0.0.1:{port}{cnn_cells.V2_PATH}"], capture_output=True, text=True,
                         check=True, env=env).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk: some requests failed:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def grpc_calls_answered(metrics_port: int) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(int(float(v)) for v in re.findall(
        r'modelops_requests_total\{(?=[^}]*route="grpc:ModelInfer")(?=[^}]*code="200")[^}]*\} ([\d.e+]+)', text))


def measure(pid: int, run) -> tuple[float, float]:
    """(requests/s, server cores) of one load run against process `pid`."""
    before, started = cpu_seconds(pid), time.monotonic()
    rate = run()
    return rate, (cpu_seconds(pid) - before) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="the CNN version directory (bench-serving's)")
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grpc-floor-"))
    image = cnn_cells.images(1)
    message = Path(cnn_cells._grpc_request(work, image)).read_bytes()
    framed = work / "infer.grpc"
    framed.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)   # gRPC's length-prefixed message
    v2 = work / "infer.json"
    v2.write_text(json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": list(image.shape),
                                          "data": image.ravel().tolist()}]}))
    rows = [empty_cell(framed, work, args.seconds), *server_cells(args.model_dir, framed, v2, args.seconds)]
    print("| server | protocol | requests/s | server CPU (cores) | CPU µs/request |\n|---|---|---|---|---|")
    for name, protocol, rate, cores in rows:
        print(f"| {name} | {protocol} | {rate:,.0f} | {cores:.2f} | {cores / rate * 1e6:,.0f} |")


def empty_cell(framed: Path, work: Path, seconds: float):
    counter = work / "answered"
    proc = subprocess.Popen([sys.executable, __file__, "--empty-server", "18191", str(counter)])
    try:
        time.sleep(3)
        h2load(18191, framed, 2)                                       # warm up
        first = int(counter.read_text())
        (rate, ok), cores = measure(proc.pid, lambda: h2load(18191, framed, seconds))
        time.sleep(0.5)
        if int(counter.read_text()) - first < ok:
            raise SystemExit("empty grpcio server: fewer calls answered than h2load counted")
        return "grpc.aio, empty ModelInfer handler", "gRPC", rate, cores
    finally:
        proc.terminate()
        proc.wait()


def server_cells(model_dir: Path, framed: Path, v2: Path, seconds: float):
    proc = subprocess.Popen([str(Path(sys.executable).parent / "modelops-serve"), "--model-dir", str(model_dir),
                             "--model-name", "digits", "--port", "18180", "--grpc-port", "18181",
                             "--log-level", "warning"])
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen("http://127.0.0.1:18180/v2/health/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        h2load(18181, framed, 2)
        answered = grpc_calls_answered(18180)
        (rate, ok), cores = measure(proc.pid, lambda: h2load(18181, framed, seconds))
        if grpc_calls_answered(18180) - answered < ok:
            raise SystemExit("modelops-serve: fewer ModelInfer calls succeeded than h2load counted")
        yield "modelops-serve", "gRPC (raw contents)", rate, cores
        wrk(18180, v2, 2)
        rate, cores = measure(proc.pid, lambda: wrk(18180, v2, seconds))
        yield "modelops-serve", "V2 JSON (HTTP/1.1)", rate, cores
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--empty-server"]:
        empty_server(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
