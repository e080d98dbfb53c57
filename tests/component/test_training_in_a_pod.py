"""The trainer under the conditions of a pod that local runs do not have.

In a pod, /tmp is an emptyDir and the storage is another volume (two filesystems), and the
kubelet stops a container with SIGTERM while its entrypoint runs as PID 1.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from modelops_contracts import manifest as mf
from modelops_contracts import report
from training_fixtures import job_config, write_config

from modelops_training import artifacts
from modelops_training.train import train

pytestmark = pytest.mark.component
BIN = Path(sys.executable).parent


@pytest.fixture
def scratch_on_another_filesystem(tmp_path):
    """A scratch directory on a different filesystem than tmp_path: /dev/shm, or a tmpfs mounted here."""
    candidates = [Path("/dev/shm")]
    mounted = None
    if os.geteuid() == 0:
        mounted = tmp_path / "tmpfs"
        mounted.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mounted)]).returncode == 0:
            candidates.insert(0, mounted)
        else:
            mounted = None
    other = next((p for p in candidates if p.is_dir() and os.access(p, os.W_OK)
                  and os.stat(p).st_dev != os.stat(tmp_path).st_dev), None)
    if other is None:
        pytest.skip("no second filesystem here (no writable /dev/shm on another device, not root to mount tmpfs)")
    scratch = Path(tempfile.mkdtemp(prefix="modelops-test-", dir=other))
    yield scratch
    subprocess.run(["rm", "-rf", str(scratch)])
    if mounted is not None:
        subprocess.run(["umount", str(mounted)])


def test_training_publishes_when_tmp_and_storage_are_different_filesystems(tmp_path, scratch_on_another_filesystem,
                                                                           monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_on_another_filesystem))
    store = tmp_path / "store"
    config = job_config(store, training={"epochs": 2})
    assert os.stat(scratch_on_another_filesystem).st_dev != os.stat(tmp_path).st_dev

    result = train(config)

    assert result.succeeded, result.message
    published = mf.verify(config.version_dir)
    assert any(f.startswith("logs/") for f in published.files), sorted(published.files)
    assert not list(scratch_on_another_filesystem.glob("modelops-scratch-*")), "the scratch directory was left behind"


@contextlib.contextmanager
def killed_on_exit(proc: subprocess.Popen):
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def terminated_report(proc: subprocess.Popen, stdout: str, stderr: str) -> report.StageReport:
    assert proc.returncode == report.EXIT_TERMINATED, stderr[-3000:]
    result = report.decode(stdout)
    assert not result.succeeded and result.reason == "Terminated"
    return result


def test_sigterm_stops_training_keeps_the_backup_and_exits_with_a_reason(tmp_path):
    """As PID 1 would: the trainer must act on SIGTERM, not wait for the grace period's SIGKILL."""
    store = tmp_path / "store"
    config = job_config(store, training={"epochs": 100000, "batchSize": 32})
    path = write_config(tmp_path / "job.json", config)
    backup = artifacts.backup_dir(config.version_dir, 1)
    env = {**os.environ, "MODELOPS_BACKUP_EVERY_STEPS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([str(BIN / "modelops-train"), "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    with killed_on_exit(proc):
        deadline = time.monotonic() + 120
        while not (backup.is_dir() and any(backup.rglob("*.index"))):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no backup was written within 120 s"
            time.sleep(0.2)
        time.sleep(1)   # a few more epochs, so the signal lands in the middle of fit()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)

    result = terminated_report(proc, stdout, stderr)
    assert "SIGTERM" in result.message and "backup" in result.message
    assert json.loads(Path(config.report_path).read_text())["reason"] == "Terminated"
    assert any(backup.rglob("*.index")), "the last backup must survive for the next pod to resume from"
    assert not config.version_dir.exists(), "a terminated attempt must not publish a version"


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(),
                    reason="needs root and setpriv to run the trainer as another user")
def test_storage_the_pods_user_cannot_write_names_the_path_and_the_uid():
    """The real-run failure: a root-owned 755 volume, the trainer running as the images' uid 65532."""
    root = Path(tempfile.mkdtemp(prefix="modelops-owned-by-root-"))
    try:
        root.chmod(0o755)
        (root / "home").mkdir()
        (root / "home").chmod(0o777)
        store = root / "store"
        store.mkdir(mode=0o755)
        config = job_config(store)
        path = write_config(root / "job.json", config)
        path.chmod(0o644)
        done = subprocess.run(["setpriv", "--reuid", "65532", "--regid", "65532", "--clear-groups",
                               str(BIN / "modelops-train"), "--config", str(path),
                               "--report-path", str(root / "home" / "report.json")],
                              capture_output=True, text=True, timeout=180,
                              env={**os.environ, "HOME": str(root / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"})
    finally:
        subprocess.run(["rm", "-rf", str(root)])
    assert done.returncode == report.EXIT_STORAGE_ERROR, done.stderr[-3000:]
    message = report.decode(done.stdout).message
    assert str(store / "ml") in message and "uid 65532 gid 65532" in message, message
    assert "Permission denied" in message and "spec.podSecurityContext" in message, message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a PID namespace (the trainer as PID 1)")
def test_sigterm_while_tensorflow_still_imports_stops_pid_1_at_once(tmp_path):
    """The kernel drops a signal PID 1 has no handler for: the trainer must have one from its first moment.

    Importing TensorFlow takes seconds (more on a busy node). A pod deleted then must stop during the
    import, not once the stage's own handler is in place, nor after the grace period.
    """
    config = job_config(tmp_path / "store", training={"epochs": 1})
    path = write_config(tmp_path / "job.json", config)
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", str(BIN / "modelops-train"),
                             "--config", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    with killed_on_exit(proc):
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            # unshare's child is the trainer, PID 1 of the namespace: signal it as the kubelet would until
            # one is taken (signals that arrive before Python itself runs are dropped, rightly).
            for pid in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split():
                with contextlib.suppress(ProcessLookupError):   # it may have just exited
                    os.kill(int(pid), signal.SIGTERM)
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=30)

    result = terminated_report(proc, stdout, stderr)
    assert "while starting" in result.message, result.message
    assert not config.version_dir.exists()
