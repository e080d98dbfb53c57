"""How many ModelInfer calls per second grpcio's Python server answers with an empty handler, beside the
whole modelops-serve path over gRPC and over HTTP (V2 JSON), each driven by a C load tool on 127.0.0.1
(h2load for gRPC, wrk for HTTP), so the client's own cost stays small. A measurement, not a test.

The question it answers (issue 11): can any grpcio server reach the requests/s our HTTP path reaches? The
empty handler is grpcio's floor: no decoding, no model, no batcher.

    python serving-image/bench/grpc_floor.py [--model-dir DIR] [--seconds 8]

Needs h2load (Debian: nghttp2-client) and wrk. Every cell's replies are checked: h2load counts HTTP
statuses only, so a gRPC cell also reads the server's own count of answered calls (modelops-serve's
/metrics, or the empty server's counter) and fails if any call did not succeed.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_serving as bench  # noqa: E402
import cnn_cells  # noqa: E402
from serving_fixtures import free_port  # noqa: E402  (bench_serving put tests/component on the path)

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


def h2load(port: int, body: Path, seconds: float) -> tuple[float, int]:
    """(requests/s, 2xx count) of ModelInfer calls, 4 connections x 2 streams."""
    out = subprocess.run(["h2load", "-c", "4", "-m", "2", "-D", str(round(seconds)), "-d", str(body),
                          "-H", "content-type: application/grpc", "-H", "te: trailers",
                          f"http://127.0.0.1:{port}{GRPC_PATH}"], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))
    return rate, int(re.search(r"status codes: (\d+) 2xx", out).group(1))


def wrk(port: int, workload, seconds: float) -> float:
    rate, _, _, errors = bench.parse_wrk(bench.run_wrk(f"http://127.0.0.1:{port}{workload.path}", workload, seconds, 8))
    if errors:
        raise SystemExit(f"wrk: {errors} requests failed")
    return rate


def grpc_calls_answered(metrics_port: int) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(int(float(v)) for v in re.findall(
        r'modelops_requests_total\{(?=[^}]*route="grpc:ModelInfer")(?=[^}]*code="200")[^}]*\} ([\d.e+]+)', text))


def measure(pid: int, run) -> tuple[float, float]:
    """(what `run` returns, server cores during it) for one load run against process `pid`."""
    before, started = bench.cpu_seconds(pid), time.monotonic()
    result = run()
    return result, (bench.cpu_seconds(pid) - before) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="the CNN version directory (default: bench-serving's)")
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    work = bench.CACHE / "bench-serving" / "run"
    work.mkdir(parents=True, exist_ok=True)
    workloads = {(w.protocol, w.instances): w for w in cnn_cells.write_workloads(work, bench.Workload)}
    message = workloads[(cnn_cells.GRPC, 1)].body.read_bytes()
    framed = work / "cnn-grpc-1.framed"
    framed.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)   # gRPC's length-prefixed message
    model_dir = args.model_dir or cnn_cells.cnn_model(bench.CACHE)
    rows = [empty_cell(framed, work, args.seconds),
            *server_cells(model_dir, framed, workloads[("Open Inference V2, JSON", 1)], work, args.seconds)]
    print("| server | protocol | requests/s | server CPU (cores) | CPU µs/request |\n|---|---|---|---|---|")
    for name, protocol, rate, cores in rows:
        print(f"| {name} | {protocol} | {rate:,.0f} | {cores:.2f} | {cores / rate * 1e6:,.0f} |")


def empty_cell(framed: Path, work: Path, seconds: float):
    counter, port = work / "grpc-floor-answered", free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--empty-server", str(port), str(counter)])
    try:
        time.sleep(3)
        h2load(port, framed, 2)                                       # warm up
        first = int(counter.read_text())
        (rate, ok), cores = measure(proc.pid, lambda: h2load(port, framed, seconds))
        time.sleep(0.5)
        if int(counter.read_text()) - first < ok:
            raise SystemExit("empty grpcio server: fewer calls answered than h2load counted")
        return "grpc.aio, empty ModelInfer handler", "gRPC", rate, cores
    finally:
        bench.stop(proc)


def server_cells(model_dir: Path, framed: Path, v2_json, work: Path, seconds: float):
    port, grpc_port = free_port(), free_port()
    proc = bench.start(bench.OURS, model_dir, port, work / f"grpc-floor-{port}.log", grpc_port,
                       {"instances": cnn_cells.images(1).tolist()})
    try:
        h2load(grpc_port, framed, 2)
        answered = grpc_calls_answered(port)
        (rate, ok), cores = measure(proc.pid, lambda: h2load(grpc_port, framed, seconds))
        if grpc_calls_answered(port) - answered < ok:
            raise SystemExit("modelops-serve: fewer ModelInfer calls succeeded than h2load counted")
        yield "modelops-serve", "gRPC (raw contents)", rate, cores
        wrk(port, v2_json, 2)
        rate, cores = measure(proc.pid, lambda: wrk(port, v2_json, seconds))
        yield "modelops-serve", "V2 JSON (HTTP/1.1)", rate, cores
    finally:
        bench.stop(proc)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--empty-server"]:
        empty_server(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
