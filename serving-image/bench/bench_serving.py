"""`make bench-serving`: our server against the naive Flask + Keras service and KServe's model server.

One run, one machine, one model (an MLP on the bundled digits data); load from `wrk` on loopback.
For each server and body (1 and 32 instances): requests/s, rows/s, p50, p99, and the server's CPU
(seconds of CPU per wall second, and per request) read from /proc. Writes docs/bench-serving.md.
Usage: python bench_serving.py [--duration 10] [--connections 8] [--out docs/bench-serving.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "component"))
from serving_fixtures import build_version_dir, digits, free_port, poll  # noqa: E402
from modelops_serving.settings import ServerSettings  # noqa: E402
import cnn_cells  # noqa: E402

CACHE = Path(os.environ.get("MODELOPS_CACHE", Path.home() / ".cache" / "modelops"))
KSERVE_PYTHON = CACHE / "bench-kserve-venv" / "bin" / "python"
V1_PATH = "/v1/models/digits:predict"
V2_PATH = "/v2/models/digits/infer"
OURS = "modelops-serve"
OURS_WORKERS = "modelops-serve --workers 2"   # the same server as a pod with limits.cpu 2 runs it
MINE = (OURS, OURS_WORKERS)
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Workload:
    protocol: str          # what the table says
    instances: int
    path: str
    body: Path
    header_length: str = ""


def write_workloads(x: np.ndarray, work: Path) -> list[Workload]:
    """V1 JSON bodies for every server; for ours also the V2 binary tensors tritonclient sends by default."""
    workloads = []
    for n in (1, 32):
        v1 = work / f"v1-{n}.json"
        v1.write_text(json.dumps({"instances": np.asarray(x[:n]).tolist()}))
        workloads.append(Workload("TF Serving REST, JSON", n, V1_PATH, v1))
    for n in (1, 32):
        raw = np.ascontiguousarray(x[:n], dtype="<f4").tobytes()
        header = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [n, 64],
                                         "parameters": {"binary_data_size": len(raw)}}],
                             "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}).encode()
        v2 = work / f"v2-{n}.bin"
        v2.write_bytes(header + raw)
        workloads.append(Workload("Open Inference V2, binary", n, V2_PATH, v2, str(len(header))))
    return workloads


@dataclass
class Cell:
    server: str
    protocol: str
    instances: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_cores: float       # server CPU seconds per wall second
    cpu_us_per_request: float
    rss_mib: float
    load_before: float
    model: str = "MLP"

    @property
    def rows_per_s(self) -> float:
        return self.requests_per_s * self.instances


def family(pid: int) -> list[int]:
    """The process and its running children (a supervisor's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(c) for c in children)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server: the process and its running children, each with its own exited ones."""
    def one(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(v) for v in fields[11:15]) / TICKS
    return sum(one(p) for p in family(pid))


def rss_mib(pid: int) -> float:
    def one(p: int) -> float:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text())
        return int(match.group(1)) / 1024 if match else float("nan")
    return sum(one(p) for p in family(pid))


def parse_wrk(text: str) -> tuple[float, float, float, int]:
    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
        return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    errors += sum(int(n) for n in re.findall(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                                             text)[0]) if "Socket errors" in text else 0
    return rps, p50, p99, errors


def run_wrk(url: str, w: Workload, seconds: float, connections: int) -> str:
    done = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s",
                           str(HERE / "post.lua"), url],
                          env={**os.environ, "BODY": str(w.body), "HEADER_LENGTH": w.header_length},
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    return done.stdout


def start(name: str, model_dir: Path, port: int, log: Path, grpc_port: int = 0,
          probe: dict | None = None) -> subprocess.Popen:
    commands = {
        OURS: [str(Path(sys.executable).parent / "modelops-serve"), "--model-dir", str(model_dir),
                           "--model-name", "digits", "--port", str(port), "--log-level", "warning",
                           "--grpc-port", str(grpc_port)],
        OURS_WORKERS: [str(Path(sys.executable).parent / "modelops-serve"), "--model-dir", str(model_dir),
                       "--model-name", "digits", "--port", str(port), "--log-level", "warning",
                       "--grpc-port", str(grpc_port), "--workers", "2"],
        "kserve + LiteRT": [str(KSERVE_PYTHON), str(HERE / "kserve_litert_server.py"), str(model_dir / "model.tflite"),
                            str(port)],
        "Flask + Keras": [sys.executable, str(HERE / "flask_keras_server.py"), str(model_dir / "model.keras"), str(port)],
    }
    sink = open(log, "wb")
    process = subprocess.Popen(commands[name], stdout=sink, stderr=subprocess.STDOUT, cwd=HERE)
    url = f"http://127.0.0.1:{port}{V1_PATH}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            return httpx.post(url, json=probe or {"instances": [[0.0] * 64]}, timeout=30).status_code == 200
        except httpx.TransportError:
            return False
    poll(answers, timeout=180, interval=0.5, what=f"{name} to answer")
    return process


def check_kserve_client(port: int, x: np.ndarray, work: Path) -> str:
    """KServe's own V2 client, unchanged, against our server (it lives in the KServe venv)."""
    rows = np.ascontiguousarray(x[:4], dtype=np.float32)
    expected = httpx.post(f"http://127.0.0.1:{port}{V1_PATH}", json={"instances": rows.tolist()}, timeout=30)
    data = work / "kserve-client.npz"
    np.savez(data, rows=rows, expected=np.array(expected.json()["predictions"], dtype=np.float32))
    done = subprocess.run([str(KSERVE_PYTHON), str(HERE / "kserve_client_check.py"), f"http://127.0.0.1:{port}",
                           str(data)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"the KServe SDK client failed against our server: {done.stderr[-2000:]}")
    return done.stdout.strip()


def load_once(port: int, grpc_port: int, w: Workload, seconds: float, connections: int):
    """One run of the load tool: wrk for HTTP, ghz for gRPC; (requests/s, p50, p99, errors)."""
    if w.path == "grpc":
        return cnn_cells.run_ghz(grpc_port, w.body, seconds, connections)
    return parse_wrk(run_wrk(f"http://127.0.0.1:{port}{w.path}", w, seconds, connections))


def check_body(name: str, port: int, w: Workload) -> None:
    if w.path == "grpc":
        return
    headers = {"content-type": "application/octet-stream", "inference-header-content-length": w.header_length} \
        if w.header_length else {"content-type": "application/json"}
    check = httpx.post(f"http://127.0.0.1:{port}{w.path}", content=w.body.read_bytes(), headers=headers, timeout=30)
    if check.status_code != 200:
        raise RuntimeError(f"{name} refused the {w.protocol} body: {check.status_code} {check.text[:200]}")


def measure(name: str, process: subprocess.Popen, port: int, workloads: list[Workload], seconds: float,
            connections: int, grpc_port: int = 0, model: str = "MLP") -> list[Cell]:
    cells = []
    for w in workloads:
        check_body(name, port, w)
        load_once(port, grpc_port, w, min(2.0, seconds), connections)          # warm-up, not measured
        load = os.getloadavg()[0]
        cpu0, t0 = cpu_seconds(process.pid), time.monotonic()
        rps, p50, p99, errors = load_once(port, grpc_port, w, seconds, connections)
        cpu1, t1 = cpu_seconds(process.pid), time.monotonic()
        requests = rps * (t1 - t0)
        cells.append(Cell(name, w.protocol, w.instances, rps, p50, p99, errors, (cpu1 - cpu0) / (t1 - t0),
                          (cpu1 - cpu0) / max(requests, 1) * 1e6, rss_mib(process.pid), load, model))
        print(f"{name:16s} {model} {w.protocol:26s} {w.instances:3d} inst: {rps:9.1f} req/s p50 {p50:7.2f} ms "
              f"p99 {p99:7.2f} ms errors {errors} cpu {cells[-1].cpu_cores:.2f} cores load {load:.2f}", flush=True)
    return cells


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def bench_model() -> Path:
    """The benchmark's model, built once and cached: MLP 64→128→10 on digits, dynamic-range TFLite."""
    root = CACHE / "bench-serving" / "digits-mlp128"
    if not (root / "manifest.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        build_version_dir(root, "classification", hidden=128, epochs=30)
    return root


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"


def table(cells: list[Cell]) -> str:
    lines = ["| model | server | protocol | instances/request | requests/s | rows/s | p50 ms | p99 ms | errors | "
             "server CPU (cores) | CPU µs/request | RSS MiB | load avg (1 min) before |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c.model} | {c.server} | {c.protocol} | {c.instances} | {c.requests_per_s:,.0f} | "
                     f"{c.rows_per_s:,.0f} | {c.p50_ms:.2f} | "
                     f"{c.p99_ms:.2f} | {c.errors} | {c.cpu_cores:.2f} | {c.cpu_us_per_request:,.0f} | "
                     f"{c.rss_mib:.0f} | {c.load_before:.2f} |")
    return "\n".join(lines)


def verdicts(cells: list[Cell], connections: int) -> str:
    """The issue's targets, checked against this run's numbers."""
    by = {(c.server, c.instances): c for c in cells if c.protocol.startswith("TF Serving") and c.model == "MLP"}
    lines = ["Targets (issue 4), from this run (same protocol and bodies for all three servers):"]
    for n in sorted({c.instances for c in cells}):
        ours, peer, naive = by.get((OURS, n)), by.get(("kserve + LiteRT", n)), by.get(("Flask + Keras", n))
        if ours and peer:
            ratio = ours.requests_per_s / peer.requests_per_s
            lines.append(f"- {n} instance(s): modelops-serve / KServe = {ratio:.2f}× requests/s and rows/s "
                         f"(target ≥ 2×: {'met' if ratio >= 2 else 'NOT met'})"
                         + (f"; / Flask + Keras = {ours.requests_per_s / naive.requests_per_s:,.0f}×" if naive else ""))
    single = by.get((OURS, 1))
    if single:
        lines.append(f"- p99 for single instances at {connections} connections: {single.p99_ms:.2f} ms "
                     f"(target ≤ 5 ms: {'met' if single.p99_ms <= 5 else 'NOT met'})")
    return "\n".join(lines)


def worker_verdicts(cells: list[Cell]) -> str:
    """Issue 11: a pod with N CPUs should use them. Two workers against one, cell by cell."""
    one = {(c.model, c.protocol, c.instances): c for c in cells if c.server == OURS}
    lines = ["Two worker processes against one (issue 11: a pod with 2 CPUs uses them; wrk or ghz share the "
             "same 2 CPUs):"]
    for c in (c for c in cells if c.server == OURS_WORKERS):
        base = one.get((c.model, c.protocol, c.instances))
        if base:
            lines.append(f"- {c.model} {c.protocol}, {c.instances} per request: {c.requests_per_s:,.0f} vs "
                         f"{base.requests_per_s:,.0f} req/s ({c.requests_per_s / base.requests_per_s:.2f}×), "
                         f"server CPU {c.cpu_cores:.2f} vs {base.cpu_cores:.2f} cores, p99 {c.p99_ms:.2f} vs "
                         f"{base.p99_ms:.2f} ms")
    return "\n".join(lines)


def cnn_verdicts(cells: list[Cell], connections: int) -> str:
    """Issue 11's targets for the image model."""
    by = {(c.server, c.protocol, c.instances): c for c in cells if c.model == "CNN"}
    lines = ["Targets (issue 11), the CNN on 8×8×1 uint8 images:"]
    for n, target in ((1, 3.0), (32, 2.5)):
        ours, peer = by.get((OURS, "TF Serving REST, JSON", n)), by.get(("kserve + LiteRT", "TF Serving REST, JSON", n))
        if ours and peer:
            ratio = ours.requests_per_s / peer.requests_per_s
            # CPU per request does not depend on how much of the shared machine each server got.
            cpu = peer.cpu_us_per_request / max(ours.cpu_us_per_request, 1e-9)
            lines.append(f"- {n} image(s), JSON: modelops-serve / KServe = {ratio:.2f}× requests/s "
                         f"(target ≥ {target:g}×: {'met' if ratio >= target else 'NOT met'}); KServe spends "
                         f"{cpu:.1f}× our server CPU per request")
        json_cell = by.get((OURS, "Open Inference V2, JSON", n))
        for protocol in ("Open Inference V2, binary", cnn_cells.GRPC):
            cell = by.get((OURS, protocol, n))
            if cell and json_cell:
                met = cell.requests_per_s >= json_cell.requests_per_s
                lines.append(f"- {n} image(s): {protocol} {cell.requests_per_s:,.0f} req/s vs V2 JSON "
                             f"{json_cell.requests_per_s:,.0f} (target ≥ JSON: {'met' if met else 'NOT met'})")
    single = by.get((OURS, "Open Inference V2, binary", 1))
    if single:
        lines.append(f"- p99 for single images (V2 binary) at {connections} connections: {single.p99_ms:.2f} ms "
                     f"(target ≤ 5 ms: {'met' if single.p99_ms <= 5 else 'NOT met'})")
    return "\n".join(lines)


def bench_cnn(servers: list[str], work: Path, seconds: float, connections: int) -> list[Cell]:
    """Ours (every protocol, gRPC when ghz is installed) and KServe (REST JSON) on the CNN."""
    model_dir = cnn_cells.cnn_model(CACHE)
    workloads = cnn_cells.write_workloads(work, Workload)
    if cnn_cells.ghz() is None:
        print("bench-serving: ghz not installed (go install github.com/bojand/ghz/cmd/ghz@v0.121.0): "
              "no gRPC cells", file=sys.stderr)
        workloads = [w for w in workloads if w.path != "grpc"]
    probe = {"instances": cnn_cells.images(1).tolist()}
    cells = []
    for name in (n for n in servers if n in (*MINE, "kserve + LiteRT")):
        port, grpc_port = free_port(), free_port()
        process = start(name, model_dir, port, work / f"cnn-{name.split()[0]}-{port}.log",
                        grpc_port if name in MINE else 0, probe)
        try:
            mine = workloads if name in MINE else [w for w in workloads if w.path == V1_PATH]
            cells += measure(name, process, port, mine, seconds, connections, grpc_port, "CNN")
        finally:
            stop(process)
    return cells


def bench_mlp(servers: list[str], work: Path, seconds: float, connections: int) -> tuple[list[Cell], str]:
    """Every server on the table model; ours also checked with KServe's own client."""
    model_dir = bench_model()
    x, _ = digits()
    workloads = write_workloads(x, work)
    cells: list[Cell] = []
    client_check = "not run (our server not in --servers)"
    for name in servers:
        port = free_port()
        process = start(name, model_dir, port, work / f"{name.split()[0]}-{port}.log")
        try:
            if name == OURS:
                client_check = check_kserve_client(port, x, work)
            mine = workloads if name in MINE else [w for w in workloads if w.path == V1_PATH]
            cells += measure(name, process, port, mine, seconds, connections)
        finally:
            stop(process)
    return cells, client_check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per cell")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--servers", default=f"{OURS},{OURS_WORKERS},kserve + LiteRT,Flask + Keras")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench-serving.md")
    parser.add_argument("--models", default="mlp,cnn", help="mlp (the table model), cnn (the image model)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench-serving: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    work = CACHE / "bench-serving" / "run"
    work.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    servers, models = args.servers.split(","), args.models.split(",")
    cells, client_check = bench_mlp(servers, work, args.duration, args.connections) if "mlp" in models \
        else ([], "not run (--models without mlp)")
    if "cnn" in models:
        cells += bench_cnn(servers, work, args.duration, args.connections)
    args.out.write_text(report(cells, args, started, client_check))
    (work / "results.json").write_text(json.dumps([c.__dict__ for c in cells], indent=1))
    print(f"wrote {args.out}")
    return 0


def report(cells: list[Cell], args, started: str, client_check: str) -> str:
    model_dir = bench_model()
    return "\n\n".join([
        "# Serving benchmark",
        "Written by `make bench-serving` (`serving-image/bench/bench_serving.py`); a measurement, not a test.",
        f"- run: {started}, `wrk -t1 -c{args.connections} -d{args.duration:g}s --latency` on 127.0.0.1, "
        f"POST `{V1_PATH}` with `{{\"instances\": [...]}}` bodies of 1 and 32 digits rows (64 floats each) "
        f"to every server; ours also gets `{V2_PATH}` with binary tensors (the Open Inference Protocol's "
        "binary extension, tritonclient's default), which KServe's V1 path and Flask do not offer\n"
        f"- machine: {machine()}; shared with other engineers' builds and tests, so the 1-minute load average "
        "is recorded before each cell\n"
        f"- model: MLP 64→128→10 trained on the bundled digits, dynamic-range TFLite "
        f"({(model_dir / 'model.tflite').stat().st_size:,} bytes); the same files for all three servers. "
        "CNN: the cnn-classifier template (conv 16 and 32, dense 64) trained by the training image on "
        "builtin:digits-images, int8 TFLite with a uint8 [n, 8, 8, 1] input; bodies of 1 and 32 images as "
        "TF Serving JSON (ours and KServe), V2 JSON, V2 binary and gRPC raw contents (ours; gRPC load from "
        "`ghz` on the same CPUs)\n"
        f"- servers: `modelops-serve` with its defaults (max batch {ServerSettings.max_batch_size}, max latency "
        f"{ServerSettings.max_latency_ms:g} ms, one interpreter per CPU), and with `--workers 2` (two processes sharing the port, one interpreter each); "
        "KServe `kserve.ModelServer` (one worker, gRPC and latency logging off) with a custom `kserve.Model` "
        "running the same TFLite on LiteRT; the tutorial Flask app (its own threaded server) calling "
        "tf-keras `model.predict` on `model.keras`\n"
        "- server CPU: the process's (and its workers') user+system CPU seconds per wall second during the cell "
        "(from /proc); "
        "wrk runs on the same 2 CPUs\n"
        f"- client compatibility, checked in the same run: {client_check}",
        table(cells),
        verdicts(cells, args.connections),
        cnn_verdicts(cells, args.connections),
        worker_verdicts(cells),
        "Reading the table: the model takes microseconds, so each server's cost is its HTTP and decoding work. "
        "For 1-instance bodies that is mostly per-request overhead, where a plain ASGI app on uvicorn/httptools "
        "with batching saves most; for 32-instance JSON bodies both LiteRT servers spend most of their CPU "
        "turning 2,048 JSON numbers into Python floats and then a NumPy array, the same work for both, which "
        "narrows the gap. The binary V2 rows show what skipping JSON saves. One server process uses one core "
        "for Python work (the GIL): `--workers` runs one process per CPU on a shared port (the operator sets it from the "
        "serving container's CPU limit), and a Deployment scales with replicas.",
        "Image bodies as JSON: integer batches skip the per-number Python objects where they can "
        "(`serving-image/src/modelops_serving/jsonnum.py`): a TF Serving `{\"instances\": [...]}` body of integers "
        "is checked as text (its brackets and commas against the expected shape) and only its numbers go to "
        "orjson, as one flat list copied into the uint8 buffer; a V2 `data` list of plain ints is copied with one "
        "`bytes()` call instead of `np.array`'s element-by-element discovery. Anything else takes the general "
        "path. gRPC runs on grpcio's asyncio server, whose per-call cost is above our whole HTTP request (an "
        "empty grpcio handler against our full JSON path: `serving-image/bench/grpc_floor.py`, figures in "
        "docs/serving.md); ghz, a Go client, also spends about 290 µs of the same 2 CPUs per call, where wrk "
        "spends about 20 µs.",
    ]) + "\n"


if __name__ == "__main__":
    sys.exit(main())
