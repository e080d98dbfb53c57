"""Running the real operator process against the session's control plane, and driving its Jobs.

The operator runs as `modelops-operator` (the command the image runs), watching only the
test's namespace, so tests are isolated and can SIGKILL and restart it. kwok decides what
the operator's pods do: tests finish a Job's pods with the stage report a trainer would write.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelops_contracts.report import StageReport, encode
from tests.support.kube import (
    REPO_ROOT, create_bound_claim, finish_pod, job_pod_names, kubectl, kubectl_json, wait_for,
)

OPERATOR = Path(sys.executable).parent / "modelops-operator"


class OperatorProcess:
    """One `modelops-operator` process; start() again after kill() is an operator restart."""

    def __init__(self, namespace: str, log_dir: Path, extra_env: dict[str, str] | None = None,
                 health_port: int = 0, metrics_port: int = 0):
        self.namespace = namespace
        self.ports = (health_port, metrics_port)
        self.log_dir = log_dir
        self.env = {**os.environ, **(extra_env or {})}
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> "OperatorProcess":
        self.starts += 1
        self.proc = subprocess.Popen(
            [str(OPERATOR), "--namespace", self.namespace, "--health-port", str(self.ports[0]),
             "--metrics-port", str(self.ports[1]), "--host", "127.0.0.1", "--log-level", "debug"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=self.env)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye, as when a node dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.log_dir.glob("operator-*.log")))


@pytest.fixture
def storage(namespace):
    """A bound ReadWriteMany claim `models` (the examples' storage), as a real cluster would provide."""
    pv = f"models-{namespace}"
    create_bound_claim(namespace, "models", pv)
    yield "models"
    kubectl("delete", "pv", pv, "--wait=false", check=False)


@pytest.fixture
def operator(crd, namespace, storage, tmp_path):
    """The operator watching this test's namespace; its log tail shows in a failing test's output."""
    op = OperatorProcess(namespace, tmp_path).start()
    print(f"operator logs: {tmp_path}/operator-*.log")
    yield op
    op.stop()
    print(op.logs())


# --- reading and driving -------------------------------------------------------------------

def load_example(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "examples" / f"{name}.yaml").read_text())


def apply(namespace: str, md: dict) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(md))


def md_status(namespace: str, name: str) -> dict:
    return kubectl_json("get", f"md/{name}", "-n", namespace).get("status") or {}


def wait_md(namespace: str, name: str, predicate, describe: str, timeout: float = 60) -> dict:
    """Poll the resource's status until `predicate(status)`; a timeout shows the last status seen."""
    try:
        return wait_for(lambda: predicate(s := md_status(namespace, name)) and s, timeout, describe)
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast status of md/{name}: {json.dumps(md_status(namespace, name))}") from None


def wait_phase(namespace: str, name: str, phase: str, timeout: float = 60) -> dict:
    return wait_md(namespace, name, lambda s: s.get("phase") == phase, f"md/{name} to reach phase {phase}", timeout)


def report(stage: str, version: str, metrics: dict, attempt: int = 1, **fields) -> str:
    return encode(StageReport(stage=stage, succeeded=fields.pop("succeeded", True), version=version,
                              attempt=attempt, metric=next(iter(metrics), None), metrics=metrics, **fields))


def finish_job(namespace: str, job: str, *, exit_code: int = 0, message: str | None = None, pods: int = 1,
               timeout: float = 60) -> None:
    """Wait for the Job's pods to run, then make kwok finish each with this exit code and message."""
    names = wait_for(lambda: len(n := job_pod_names(namespace, job)) >= pods and n, timeout,
                     f"{pods} pod(s) of Job {job}")
    for pod in names:
        wait_for(lambda: kubectl_json("get", f"pod/{pod}", "-n", namespace)["status"].get("phase") == "Running",
                 timeout, f"pod {pod} to run")
        finish_pod(namespace, pod, exit_code=exit_code, message=message)


def objects(namespace: str, kind: str) -> list[dict]:
    return kubectl_json("get", kind, "-n", namespace)["items"]


def events(namespace: str, name: str) -> list[dict]:
    return [e for e in objects(namespace, "events")
            if e["involvedObject"].get("kind") == "ModelDeployment" and e["involvedObject"]["name"] == name]
