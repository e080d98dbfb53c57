"""Two worker processes with TF_CONFIG on 127.0.0.1 train one model (MultiWorkerMirroredStrategy, tf-keras).

This is the regression test for the Keras 3 + MultiWorkerMirroredStrategy failure in TENSORFLOW.md.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from modelops_contracts import manifest as mf
from modelops_contracts import report
from training_fixtures import files_under, job_config

from modelops_training import artifacts
from modelops_training.local_cluster import LocalCluster, run_local_workers

pytestmark = pytest.mark.component
TIMEOUT_S = 180


def two_worker_config(storage, epochs: int):
    # Large batches keep the steps (each an all-reduce between processes) few.
    return job_config(storage, model={"params": {"hiddenUnits": [128, 64]}},
                      training={"strategy": "MultiWorkerMirrored", "workers": 2, "epochs": epochs,
                                "batchSize": 128, "learningRate": 0.005})


def test_two_workers_train_one_model_and_only_the_chief_writes(tmp_path):
    storage = tmp_path / "store"
    config = two_worker_config(storage, epochs=3)
    chief = run_local_workers(config, timeout_s=TIMEOUT_S, workdir=tmp_path / "workers")
    assert chief.succeeded, chief.message
    assert chief.artifact_path == str(config.version_dir)
    assert chief.metrics["accuracy"] >= 0.85

    other = report.decode((tmp_path / "workers" / "worker-1.report.json").read_text())
    assert other.succeeded and other.artifact_path is None
    assert other.metrics == chief.metrics          # one model: the same weights on both workers

    manifest = mf.verify(config.version_dir)
    assert manifest.extra["training"]["workers"] == 2 and manifest.extra["training"]["replicas"] == 2
    # Nothing but the published version in the shared storage: no backup, no staging, no second copy.
    written = files_under(storage)
    assert written and all(f.startswith("ml/digits/v1/") for f in written)


def has_checkpoint(backup: Path) -> bool:
    try:
        return any(p.name == "checkpoint" for p in backup.rglob("*"))
    except FileNotFoundError:   # a worker's temporary directory vanished while we walked the tree
        return False


def test_a_killed_worker_restarted_resumes_from_the_backup(tmp_path):
    storage = tmp_path / "store"
    config = two_worker_config(storage, epochs=12)
    backup = artifacts.backup_dir(config.version_dir, attempt=1)
    every_epoch = {"MODELOPS_BACKUP_EVERY_STEPS": "1"}

    with LocalCluster(config, tmp_path / "first", env=every_epoch) as cluster:
        deadline = time.monotonic() + TIMEOUT_S
        while not has_checkpoint(backup):
            assert time.monotonic() < deadline, "no backup checkpoint appeared"
            assert all(p.poll() is None for p in cluster.processes), "a worker ended before the first backup"
            time.sleep(0.05)
        os.kill(cluster.processes[1].pid, signal.SIGKILL)
        codes = cluster.wait(TIMEOUT_S)
        assert all(p.poll() is not None for p in cluster.processes)
    assert codes[1] == -signal.SIGKILL
    assert codes[0] != 0                            # the chief cannot finish alone and is stopped
    assert not config.version_dir.exists()
    assert backup.is_dir()

    restarted = run_local_workers(config, timeout_s=TIMEOUT_S, workdir=tmp_path / "second", env=every_epoch)
    assert restarted.succeeded, restarted.message
    history = json.loads((config.version_dir / "history.json").read_text())
    resumed_at = history["resumedAtEpoch"]
    assert resumed_at is not None and 1 <= resumed_at < 12
    assert [row["epoch"] for row in history["epochs"]] == list(range(resumed_at + 1, 13))
    assert "resumed from backup at epoch" in (tmp_path / "second" / "worker-0.log").read_text()
    assert not backup.exists()


def processes_running(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:
            pass   # the process ended while we looked
    return pids


def test_a_run_past_its_deadline_fails_and_leaves_no_worker_behind(tmp_path):
    config = two_worker_config(tmp_path / "store", epochs=10_000)
    result = run_local_workers(config, timeout_s=8, workdir=tmp_path / "workers")
    assert not result.succeeded and result.reason == "TrainingFailed"
    assert "timed out after 8s" in result.message
    assert processes_running(str(tmp_path / "workers")) == []
    assert not config.version_dir.exists()


def test_two_workers_stream_tfrecord_shards_each_reading_its_own_files(tmp_path):
    from test_training_records import SPEC, write_shards
    (tmp_path / "data").mkdir()
    write_shards(tmp_path / "data", 3)
    storage = tmp_path / "store"
    config = job_config(storage, model={"template": "cnn-classifier"},
                        data={"uri": str(tmp_path / "data" / "digits.tfrecord-*"), "target": "digit",
                              "featureSpec": SPEC},
                        training={"strategy": "MultiWorkerMirrored", "workers": 2, "epochs": 4,
                                  "batchSize": 64, "learningRate": 0.003})
    chief = run_local_workers(config, timeout_s=TIMEOUT_S, workdir=tmp_path / "workers")
    assert chief.succeeded, chief.message
    assert chief.metrics["accuracy"] >= 0.8
    for index in (0, 1):
        log = (tmp_path / "workers" / f"worker-{index}.log").read_text()
        assert f"worker {index}/2: training examples streamed from 3 TFRecord files, sharded by FILE " \
               f"(3 files for 2 workers)" in log, log[-3000:]
    assert mf.verify(config.version_dir).extra["training"]["workers"] == 2
