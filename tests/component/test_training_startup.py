"""Multi-worker training cannot hang on a worker that never starts: the start-up barrier times out, naming it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from modelops_contracts import report
from training_fixtures import job_config

from modelops_training import barrier
from modelops_training.errors import WorkersNotStarted
from modelops_training.local_cluster import free_ports
from modelops_training.worker_env import build_tf_config

pytestmark = pytest.mark.component


def test_workers_that_all_start_pass_the_barrier_whatever_their_order():
    hosts = [f"127.0.0.1:{p}" for p in free_ports(3)]
    errors, servers = [], []

    def worker(index: int, delay: float) -> None:
        time.sleep(delay)
        try:
            barrier.wait_for_peers(build_tf_config(hosts, index), timeout_s=20)
        except Exception as e:  # reported below, with which worker
            errors.append((index, e))
            return
        # What TensorFlow does next: its server listens on the same port, where late peers find it.
        servers.append(socket.create_server(("127.0.0.1", int(hosts[index].rpartition(":")[2]))))

    threads = [threading.Thread(target=worker, args=(i, d)) for i, d in enumerate((0.0, 1.5, 0.5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for server in servers:
        server.close()
    assert errors == [] and not any(t.is_alive() for t in threads) and len(servers) == 3


def test_a_worker_that_never_starts_fails_the_barrier_naming_it():
    hosts = [f"127.0.0.1:{p}" for p in free_ports(3)]
    started = time.monotonic()
    with pytest.raises(WorkersNotStarted, match=rf"2 of 2 other workers never started within 1s \({hosts[1]}, {hosts[2]}\)"):
        barrier.wait_for_peers(build_tf_config(hosts, 0), timeout_s=1)
    assert time.monotonic() - started < 5


def test_the_chief_alone_exits_with_workers_not_started_instead_of_waiting(tmp_path):
    config = job_config(tmp_path / "store", training={"strategy": "MultiWorkerMirrored", "workers": 2, "epochs": 1})
    (tmp_path / "job.json").write_text(config.to_json())
    hosts = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    env = {**os.environ, "MODELOPS_WORKER_HOSTS": hosts, "JOB_COMPLETION_INDEX": "0",
           barrier.STARTUP_TIMEOUT_ENV: "3"}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", "from modelops_training.cli import main_train; main_train()",
                           "--config", str(tmp_path / "job.json"), "--report-path", str(tmp_path / "report.json")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == report.EXIT_WORKERS_NOT_STARTED, proc.stderr[-2000:]
    result = report.decode((tmp_path / "report.json").read_text())
    assert result.reason == "WorkersNotStarted" and hosts.split(",")[1] in result.message
