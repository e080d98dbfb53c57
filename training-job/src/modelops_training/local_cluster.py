"""Multi-worker training on one machine: N worker processes on 127.0.0.1, for `modelops run` and tests.

Each worker is the real `modelops-train` entry point with the same env contract the operator uses on
an Indexed Job (`MODELOPS_WORKER_HOSTS` + `JOB_COMPLETION_INDEX`, see `worker_env.py`). If one worker
fails, the others are stopped at once (a multi-worker all-reduce cannot finish without it); no worker
process outlives `run_local_workers` or a `LocalCluster` context.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping

from modelops_contracts import report
from modelops_contracts.jobconfig import JobConfig
from modelops_contracts.report import StageReport

from . import worker_env

STOP_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.1
LOG_TAIL_CHARS = 300
_ENTRY = "from modelops_training.cli import main_train; main_train()"


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on 127.0.0.1 (held together so they differ; released for the workers)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class LocalCluster:
    """Worker processes for one job config; use as a context manager so they are always stopped."""

    def __init__(self, config: JobConfig, workdir: Path, workers: int | None = None,
                 env: Mapping[str, str] | None = None):
        self.config = config
        self.workdir = Path(workdir)
        self.workers = workers or config.training.workers
        self.env = dict(env or {})   # on top of this process's environment (e.g. MODELOPS_PVC_ROOT)
        self.processes: list[subprocess.Popen] = []

    def report_path(self, index: int) -> Path:
        return self.workdir / f"worker-{index}.report.json"

    def log_path(self, index: int) -> Path:
        return self.workdir / f"worker-{index}.log"

    def start(self) -> "LocalCluster":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "job.json"
        config_path.write_text(self.config.to_json())
        hosts = ",".join(f"127.0.0.1:{port}" for port in free_ports(self.workers))
        for index in range(self.workers):
            self.report_path(index).unlink(missing_ok=True)
            env = {**os.environ, **self.env, worker_env.WORKER_HOSTS_ENV: hosts,
                   worker_env.JOB_INDEX_ENV: str(index)}
            env.pop("TF_CONFIG", None)   # it would take precedence over the hosts above
            with open(self.log_path(index), "ab") as log:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-c", _ENTRY, "--config", str(config_path),
                     "--report-path", str(self.report_path(index))],
                    env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True))
        return self

    def wait(self, timeout_s: float) -> list[int | None]:
        """Exit codes once all workers exit, or as soon as one fails (the rest are then stopped)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            codes = [p.poll() for p in self.processes]
            if any(c not in (None, 0) for c in codes) or all(c is not None for c in codes):
                break
            time.sleep(POLL_SECONDS)
        self.stop()
        return [p.returncode for p in self.processes]

    def stop(self) -> None:
        """SIGTERM every live worker, then SIGKILL what is still running after the grace period."""
        live = [p for p in self.processes if p.poll() is None]
        for p in live:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for p in live:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()

    def chief_report(self, codes: list[int | None], timed_out: bool, timeout_s: float) -> StageReport:
        path = self.report_path(0)
        if path.is_file() and path.read_text().strip():
            return report.decode(path.read_text())
        failed = next((i for i, c in enumerate(codes) if c not in (None, 0)), 0)
        tail = self.log_path(failed).read_text(errors="replace")[-LOG_TAIL_CHARS:].replace("\n", " | ")
        what = f"timed out after {timeout_s:.0f}s" if timed_out else f"worker {failed} exited with code {codes[failed]}"
        return StageReport(stage="train", succeeded=False, version=self.config.model.version,
                           attempt=self.config.training.attempt, metric=self.config.metric,
                           reason="TrainingFailed", message=f"local multi-worker training: {what}; log: …{tail}")

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)   # the worker and anything it spawned; the group is the worker's own
    except ProcessLookupError:
        pass


def run_local_workers(config: JobConfig, workers: int | None = None, timeout_s: float = 600.0,
                      workdir: Path | None = None, env: Mapping[str, str] | None = None) -> StageReport:
    """Train `config` with `workers` processes (default: config.training.workers); the chief's report.

    `env` adds to (or overrides) this process's environment in every worker.
    """
    with tempfile.TemporaryDirectory(prefix="modelops-workers-") as scratch:
        with LocalCluster(config, Path(workdir or scratch), workers, env) as cluster:
            started = time.monotonic()
            codes = cluster.wait(timeout_s)
            timed_out = time.monotonic() - started >= timeout_s
            return cluster.chief_report(codes, timed_out, timeout_s)
