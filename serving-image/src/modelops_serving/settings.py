"""The server's settings: every command-line flag and the environment variable behind it.

This table is the contract with the operator's Deployment, which passes settings as
environment variables; docs/serving.md lists the same names (a unit test keeps them equal).
A flag given on the command line wins over its environment variable.
"""
from __future__ import annotations

import argparse
import ipaddress
import math
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

ENV_PREFIX = "MODELOPS_"


CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def default_interpreters(cpu_max_path: str = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU limit (a pod's limits.cpu)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = open(cpu_max_path).read().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


@dataclass(frozen=True)
class ServerSettings:
    model_dir: str
    model_name: str
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int = 0                  # Open Inference Protocol over gRPC; 0: off
    max_batch_size: int = 256           # rows per model call (LiteRT runs a small model per row in ~µs: big batches amortise the hand-off to a worker thread)
    max_latency_ms: float = 5.0         # longest a request waits for companions to fill a batch
    max_queue: int = 256                # requests waiting for the model; beyond it: 503 + Retry-After
    max_body_bytes: int = 1 << 20
    max_instances: int = 1024           # rows in one request
    max_connections: int = 1024         # open connections and requests in progress; beyond it: 503
    interpreters: int = 0               # 0: the usable CPUs shared out among the workers
    workers: int = 1                    # server processes sharing the port; 0: one per CPU the process may use
    worker_index: int = 0               # set by the supervisor for each worker it starts
    sibling_dir: str = ""               # set by the supervisor: where the workers' unix sockets are; "": supervise
    feedback_window: int = 1000         # joined (prediction, truth) pairs behind the live metric
    prediction_memory: int = 10000      # rows of recent predictions kept for feedback by id
    drain_seconds: float = 0.0          # after SIGTERM: keep serving (not ready) this long, then shut down
    graceful_timeout_s: float = 30.0    # then wait at most this long for in-flight requests
    log_level: str = "info"
    servable: str = "auto"              # which of the manifest's servables to load
    # Closing the loop (docs/serving.md "Feedback storage" and "Live figures").
    feedback_dir: str = ""              # the model's feedback directory on storage; "": joined records are not kept
    feedback_segment_records: int = 500     # records per segment: a full buffer is written at once
    feedback_flush_s: float = 30.0      # and whatever is buffered at least this often
    feedback_buffer_records: int = 5000     # unwritten records held (storage slow or gone); beyond: oldest dropped
    feedback_max_bytes: int = 1 << 30   # the feedback directory's size; beyond: oldest segments deleted
    live_window_s: float = 300.0        # how far back /v1/live reaches
    live_rows: int = 10000              # recent input rows kept for the drift score
    replica: str = ""                   # this replica's name in /v1/live and segment names ("": the host name)
    pod_ip: str = ""                    # this replica's address as peers reach it; "": ids carry none, no forwarding
    id_key: str = ""                    # signs the address in prediction ids, so a client cannot pick where feedback goes
    forward_timeout_s: float = 2.0      # longest wait for the replica a prediction id names

    @property
    def worker_count(self) -> int:
        return self.workers or default_interpreters()

    @property
    def interpreter_count(self) -> int:
        return self.interpreters or max(1, default_interpreters() // self.worker_count)

    @property
    def supervises(self) -> bool:
        """Several workers asked for, and this process is not one of them: it starts and watches them."""
        return self.worker_count > 1 and not self.sibling_dir


# name -> (type, help); the flag is --name-with-dashes, the variable MODELOPS_NAME.
_HELP: dict[str, str] = {
    "model_dir": "version directory to serve (manifest.json and the files it lists)",
    "model_name": "the name clients use in /v1/models/NAME and /v2/models/NAME",
    "host": "address to listen on (0.0.0.0 in a container)",
    "port": "HTTP port",
    "grpc_port": "gRPC port of the Open Inference Protocol (0: no gRPC)",
    "max_batch_size": "most rows the model runs in one call",
    "max_latency_ms": "longest a request waits for others to fill its batch",
    "max_queue": "most requests waiting for the model before 503 + Retry-After",
    "max_body_bytes": "largest request body accepted (413 beyond)",
    "max_instances": "most rows in one request (400 beyond)",
    "max_connections": "most open connections plus requests in progress (503 beyond)",
    "interpreters": "model instances run in parallel by each worker (0: the usable CPUs shared among the workers)",
    "workers": "server processes sharing the port, for pods with several CPUs (0: one per usable CPU)",
    "worker_index": "which worker this process is (set by the supervisor)",
    "sibling_dir": "directory of the workers' unix sockets (set by the supervisor)",
    "feedback_window": "(prediction, truth) pairs kept for the live metric",
    "prediction_memory": "rows of recent predictions remembered for feedback by id",
    "drain_seconds": "after SIGTERM, keep serving while not ready for this long",
    "graceful_timeout_s": "after draining, longest wait for in-flight requests",
    "log_level": "debug, info, warning or error",
    "servable": "auto (tflite if the version has one, else tfliteFloat32, savedModel, keras), tflite, "
                "tfliteFloat32, savedModel or keras (the last two need TensorFlow in the image)",
    "feedback_dir": "directory for feedback segment files (empty: joined feedback is not kept)",
    "feedback_segment_records": "records per feedback segment file",
    "feedback_flush_s": "longest a joined record waits before it is written",
    "feedback_buffer_records": "most unwritten feedback records held in memory (oldest dropped beyond)",
    "feedback_max_bytes": "largest size of the feedback directory (oldest segments deleted beyond)",
    "live_window_s": "seconds of traffic behind /v1/live",
    "live_rows": "recent input rows kept for the drift score",
    "replica": "this replica's name (empty: the host name)",
    "pod_ip": "this replica's address for feedback forwarded by peers (empty: no forwarding)",
    "id_key": "secret shared by the replicas that signs the address in prediction ids",
    "forward_timeout_s": "longest wait for the replica that answered a prediction",
}
SERVABLE_CHOICES = ("auto", "tflite", "tfliteFloat32", "savedModel", "keras")
REQUIRED = ("model_dir", "model_name")


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def env_names() -> list[str]:
    return [env_name(f.name) for f in fields(ServerSettings)]


def _positive(kind: type):
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} is negative")
        return value
    parse.__name__ = kind.__name__
    return parse


def _kind(f) -> type:
    return {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops-serve", description="Serve one model version over HTTP.")
    for f in fields(ServerSettings):
        default = "required" if f.name in REQUIRED else f"default {f.default}"
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            help=f"{_HELP[f.name]} [env {env_name(f.name)}; {default}]")
    return parser


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> ServerSettings:
    environ = os.environ if environ is None else environ
    parser = build_parser()
    ns = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for f in fields(ServerSettings):
        flag, env = "--" + f.name.replace("_", "-"), env_name(f.name)
        source, raw = (flag, getattr(ns, f.name)) if getattr(ns, f.name) is not None else (env, environ.get(env))
        if raw is None:
            if f.name in REQUIRED:
                parser.error(f"{flag} (or {env}) is required")
            values[f.name] = f.default
            continue
        kind = _kind(f)
        try:
            values[f.name] = raw if kind is str else _positive(kind)(raw)
        except (ValueError, argparse.ArgumentTypeError) as e:
            parser.error(f"{source}: {raw!r} is not a valid {kind.__name__} ({e})")
    if values["servable"] not in SERVABLE_CHOICES:
        parser.error(f"--servable: {values['servable']!r} is not one of {', '.join(SERVABLE_CHOICES)}")
    if min(values["max_batch_size"], values["max_queue"], values["max_instances"], values["max_connections"]) < 1:
        parser.error("max-batch-size, max-queue, max-instances and max-connections must be at least 1")
    if min(values["feedback_segment_records"], values["feedback_buffer_records"], values["live_rows"]) < 1 \
            or min(values["feedback_flush_s"], values["live_window_s"], values["forward_timeout_s"]) <= 0:
        parser.error("feedback-segment-records, feedback-buffer-records and live-rows must be at least 1; "
                     "feedback-flush-s, live-window-s and forward-timeout-s above 0")
    if values["pod_ip"]:
        try:
            ipaddress.ip_address(values["pod_ip"])
        except ValueError:
            parser.error(f"MODELOPS_POD_IP (--pod-ip): {values['pod_ip']!r} is not an IP address")
    return ServerSettings(**values)
