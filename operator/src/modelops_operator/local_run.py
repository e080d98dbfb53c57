"""`modelops run FILE.yaml`: one ModelDeployment's pipeline on this machine, no cluster.

The same stages as in a cluster, as local processes: `modelops-train` (or one process per
worker with TF_CONFIG on 127.0.0.1 ports), the same evaluation gate and retrain policy
(`policy.py`), `modelops-compress`, then `modelops-serve` on localhost and a sample prediction
over HTTP. Artifacts use the cluster's layout under a local storage directory.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import yaml

from modelops_contracts import jobconfig, manifest as manifest_contract, report as report_contract
from modelops_contracts.feedback import feedback_dir
from modelops_contracts.report import StageReport

from . import builders as b
from . import policy
from .local_service import LocalService
from .names import check_name
from .spec import Spec, SpecError, parse

READY_TIMEOUT_S = 60
STAGE_TIMEOUT_S = 1800


class RunError(RuntimeError):
    """The pipeline cannot go on; the message is for the person at the terminal."""


def say(text: str) -> None:
    print(text, flush=True)


def load_resource(path: Path) -> tuple[str, str, Spec]:
    """Read a ModelDeployment file; refuse it as the API server would (schema, then cross-field rules)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RunError(f"{path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "ModelDeployment":
        raise RunError(f"{path}: not a ModelDeployment")
    from .schema import validate_spec
    problems = validate_spec(doc.get("spec"))
    if problems:
        raise RunError(f"{path}: " + "; ".join(problems))
    try:
        spec = parse(doc["spec"])
    except SpecError as e:
        raise RunError(f"{path}: {e}") from None
    meta = doc.get("metadata") or {}
    try:
        check_name(str(meta.get("name") or ""))
    except SpecError as e:
        raise RunError(f"{path}: {e}") from None
    return meta.get("namespace") or "default", meta["name"], spec


def next_version(model_root: Path) -> str:
    numbers = [int(p.name[1:]) for p in model_root.glob("v*") if p.is_dir() and p.name[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Children started in their own process groups, so Ctrl-C or an error leaves none behind."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.children.append(proc)
        return proc

    def stop_all(self, grace_s: float = 10) -> None:
        self.stop(*self.children, grace_s=grace_s)

    def stop(self, *procs: subprocess.Popen, grace_s: float = 10) -> None:
        """SIGTERM (a server drains and flushes its feedback), SIGKILL past the grace period."""
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True)
class Server:
    """One version's `modelops-serve` process, on a port of its own."""
    version: str
    process: subprocess.Popen
    port: int
    ready_at: float            # unix seconds

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class LocalRun:
    def __init__(self, namespace: str, name: str, spec: Spec, storage: Path, processes: Processes):
        self.namespace, self.name, self.spec = namespace, name, spec
        self.storage = storage
        self.processes = processes
        self.owner = b.Owner(namespace=namespace, name=name, uid="local")
        self.work = Path(tempfile.mkdtemp(prefix="modelops-run-"))

    @property
    def storage_root(self) -> Path:
        """pvc://claim/path maps to <storage>/claim/path, the same layout as in the cluster."""
        sub = self.spec.storage_subpath
        return self.storage / self.spec.storage_claim / sub if sub else self.storage / self.spec.storage_claim

    @property
    def stage_env(self) -> dict[str, str]:
        """pvc://<claim>/<path> data resolves under the local storage directory, as under /mnt/pvc in a pod."""
        return {**os.environ, "MODELOPS_PVC_ROOT": str(self.storage), "TF_CPP_MIN_LOG_LEVEL": "2"}

    @property
    def feedback_dir(self) -> Path:
        return feedback_dir(self.storage_root, self.namespace, self.name)

    @property
    def model_root(self) -> Path:
        return self.storage_root / self.namespace / self.name

    def config(self, stage: str, version: str, attempt: int,
               feedback_before_ms: int | None = None) -> jobconfig.JobConfig:
        cfg = b.build_job_config(self.spec, self.owner, stage, version, attempt, feedback_before_ms=feedback_before_ms)
        feedback = replace(cfg.feedback, directory=str(self.feedback_dir)) if cfg.feedback else None
        return replace(cfg, storage_root=str(self.storage_root), training=on_this_machine(cfg.training, gpus_here()),
                       report_path=str(self.work / f"{stage}-{version}-a{attempt}.report.json"), feedback=feedback)

    def run_stage(self, cfg: jobconfig.JobConfig) -> StageReport:
        label = f"{cfg.stage} {cfg.model.version}" + (f" attempt {cfg.training.attempt}" if cfg.stage == "train" else "")
        say(f"==> {label}")
        if cfg.stage == "train" and cfg.training.workers > 1:
            from modelops_training.local_cluster import run_local_workers
            say(f"    {cfg.training.workers} workers with TF_CONFIG on 127.0.0.1")
            return run_local_workers(cfg, timeout_s=STAGE_TIMEOUT_S, workdir=self.work / f"workers-{cfg.training.attempt}",
                                     env=self.stage_env)
        path = self.work / f"{cfg.stage}-{cfg.model.version}-a{cfg.training.attempt}.json"
        path.write_text(cfg.to_json())
        command = "modelops-train" if cfg.stage == "train" else "modelops-compress"
        env = self.stage_env
        proc = self.processes.start([_tool(command), "--config", str(path), "--report-path", cfg.report_path],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        for line in proc.stderr:                       # the stage's progress: one line per epoch
            if " modelops" in line:                  # our loggers; TensorFlow's chatter stays out
                say("    " + line.rstrip().split(": ", 1)[-1])
        proc.wait(timeout=STAGE_TIMEOUT_S)
        report_file = Path(cfg.report_path)
        if report_file.is_file() and report_file.read_text().strip():
            return report_contract.decode(report_file.read_text())
        return StageReport(stage=cfg.stage, succeeded=False, version=cfg.model.version,
                           reason=report_contract.REASON_BY_EXIT_CODE.get(proc.returncode, "Error"),
                           message=f"{command} exited with code {proc.returncode} without a report")

    def pipeline(self, feedback_before_ms: int | None = None) -> tuple[str, StageReport, StageReport | None, str]:
        """Train (retrain per policy), compress, decide what to serve, check what was published (the manifest's
        files and sums). Returns (version, train, compress, servable).

        `feedback_before_ms`: train on the collected feedback too (a version started by a quality drop)."""
        version = next_version(self.model_root)
        asked, here = self.spec.gpus_per_worker, self.config("train", version, 1).training
        if asked and not here.gpus_per_worker:
            say(f"==> no GPU here ({gpus_here()} of the {asked} per worker the spec asks for): training with "
                f"{here.strategy} on the CPU, precision {here.precision}; a cluster runs it on GPUs")
        attempt = 1
        while True:
            trained = self.run_stage(self.config("train", version, attempt, feedback_before_ms))
            decision = policy.after_training(self.spec, attempt, trained)
            say(f"    gate: {getattr(decision, 'message', '')}")
            if isinstance(decision, policy.Fail):
                raise RunError(f"{version} failed ({decision.reason}): {decision.message}")
            if isinstance(decision, policy.Retrain):
                attempt = decision.attempt
                continue
            break
        compressed = self.run_stage(self.config("compress", version, attempt))
        served = policy.after_compression(self.spec, compressed, trained.metrics[self.spec.metric])
        say(f"    {served.message}")
        if isinstance(served, policy.Fail):
            raise RunError(f"{version} failed ({served.reason}): {served.message}")
        manifest_contract.verify(self.model_root / version)
        return version, trained, compressed, served.servable

    def serve(self, version_dir: Path, servable: str) -> Server:
        """Start a server for the version and wait until it is ready. Joined feedback is kept in the model's
        feedback directory, as in a cluster, flushed within half a monitoring period."""
        port = free_port()
        say(f"==> serve {version_dir.name} (its server on 127.0.0.1:{port})")
        env = {**os.environ, "MODELOPS_SERVABLE": servable, "TF_CPP_MIN_LOG_LEVEL": "2",
               "MODELOPS_FEEDBACK_DIR": str(self.feedback_dir), "MODELOPS_REPLICA": f"{self.name}-{version_dir.name}",
               "MODELOPS_FEEDBACK_FLUSH_S": str(max(1, self.spec.monitoring_period_s // 2))}
        log = open(self.work / f"serve-{version_dir.name}.log", "w")
        proc = self.processes.start([_tool("modelops-serve"), "--model-dir", str(version_dir), "--model-name",
                                     self.name, "--host", "127.0.0.1", "--port", str(port),
                                     "--max-batch-size", str(self.spec.max_batch_size),
                                     "--max-latency-ms", str(self.spec.max_latency_ms)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RunError(f"modelops-serve exited with code {proc.returncode}; log: {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return Server(version_dir.name, proc, port, time.time())
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RunError(f"the server was not ready within {READY_TIMEOUT_S}s; log: {log.name}")


def gpus_here() -> int:
    """NVIDIA GPUs this machine's driver lists (none without the driver)."""
    return len(glob.glob("/proc/driver/nvidia/gpus/*"))


def on_this_machine(training: jobconfig.TrainingSpec, gpus: int) -> jobconfig.TrainingSpec:
    """A spec asking for more GPUs than this machine has trains on the CPU here, with the same strategy (its
    replicas go to the CPU) and float32, instead of failing with GPUUnavailable as a pod without GPUs would."""
    if training.gpus_per_worker <= gpus:
        return training
    return replace(training, gpus_per_worker=0, precision="float32")


def _tool(name: str) -> str:
    """A console script of this environment (the venv's bin), falling back to PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def sample_prediction(run: LocalRun, url: str, version: str) -> dict[str, Any]:
    """One held-out example, predicted over HTTP exactly as a client would (TF Serving REST): a table row,
    an N-d example as nested lists, or an object keyed by input name for several inputs."""
    from modelops_training import features
    from modelops_training.data import load
    prepared = load(run.config("train", version, 1))
    row = _instance(features.take(prepared.x_val, 0))
    body = json.dumps({"instances": [row]}).encode()
    request = urllib.request.Request(f"{url}/v1/models/{run.name}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        answer = json.loads(r.read())
    truth = prepared.y_val[0]
    if prepared.classes:
        truth = prepared.classes[int(truth)] if prepared.task == "classification" else truth
    return {"row": row, "response": answer, "truth": truth.item() if hasattr(truth, "item") else truth,
            "url": f"{url}/v1/models/{run.name}:predict"}


def _instance(example) -> Any:
    if isinstance(example, dict):
        return {name: _instance(value) for name, value in example.items()}
    if example.dtype.kind == "f":
        return [round(float(x), 6) for x in example] if example.ndim == 1 else example.round(6).tolist()
    return example.tolist()


def describe_prediction(sample: dict[str, Any], manifest: manifest_contract.Manifest) -> str:
    """The answer in words: the predicted class (or value) next to the held-out truth."""
    scores = sample["response"]["predictions"][0]
    if manifest.task == "classification":
        best = max(range(len(scores)), key=scores.__getitem__)
        label = manifest.classes[best] if manifest.classes else best
        return f"predicted class {label} (p={scores[best]:.3f}); true class {sample['truth']}"
    value = scores[0] if isinstance(scores, list) else scores
    return f"predicted {value:.4g}; true value {sample['truth']:.4g}"


def summary(version: str, trained: StageReport, compressed: StageReport | None, servable: str,
            url: str, plot: Path | None, version_dir: Path) -> str:
    rows = [("version", version), ("served", f"{servable} from {version_dir}")]
    rows += [(f"held-out {k}", f"{v:.4f}") for k, v in sorted(trained.metrics.items())]
    if compressed and compressed.succeeded:
        info = compressed.compression
        rows += [(f"compressed {k}", f"{v:.4f}") for k, v in sorted(compressed.metrics.items())]
        if info.get("float32Bytes") and info.get("compressedBytes"):
            rows.append(("size", f"{info['float32Bytes']:,} B float32 TFLite -> {info['compressedBytes']:,} B "
                                 f"{info.get('method')} ({info.get('ratio', 0):.2f}x smaller)"))
    signature = manifest_contract.read(version_dir).effective_signature
    rows.append(("signature", "; ".join(f"{t.name} {t.dtype} {list(t.shape)}" for t in signature.inputs)
                 + " -> " + "; ".join(f"{t.name} {t.dtype} {list(t.shape)}" for t in signature.outputs)))
    rows.append(("endpoint", f"{url}/v1/models/{version_dir.parent.name}:predict"))
    if plot:
        rows.append(("training curve", str(plot)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelops", description="modelops on one machine, no cluster needed.")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run a ModelDeployment's pipeline locally: train, evaluate, compress, serve")
    run_p.add_argument("file", type=Path, help="a ModelDeployment YAML file")
    run_p.add_argument("--storage", type=Path, default=Path(os.environ.get("MODELOPS_LOCAL_STORAGE", "out/storage")),
                       help="local directory standing in for the storage claims (default out/storage)")
    run_p.add_argument("--keep-serving", action="store_true",
                       help="keep serving after the sample prediction, until Ctrl-C; with spec.monitoring on, "
                            "watch live quality, retrain on a measured drop and roll the new version out")
    args = parser.parse_args(argv)

    processes = Processes()
    # Both signals stop the run and its children, even where a parent started us with SIGINT ignored
    # (a background job of a non-interactive shell inherits SIG_IGN, which Python would keep).
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        namespace, name, spec = load_resource(args.file)
        run = LocalRun(namespace, name, spec, args.storage.resolve(), processes)
        version, trained, compressed, servable = run.pipeline()
        version_dir = run.model_root / version
        from .plot import training_curve
        plot = training_curve(version_dir, spec.metric)
        server = run.serve(version_dir, servable)
        service = LocalService().start()   # one address for every version the run will serve
        service.route({server.port: 1})
        say("==> summary")
        say(summary(version, trained, compressed, servable, service.url, plot, version_dir))
        sample = sample_prediction(run, service.url, version)
        say("==> sample prediction (one held-out example)")
        say(f"  curl -s -X POST {sample['url']} -d '{{\"instances\": [{json.dumps(sample['row'])}]}}'")
        say(f"  -> {json.dumps(sample['response'])}")
        say(f"  {describe_prediction(sample, manifest_contract.read(version_dir))}")
        if args.keep_serving:
            from .local_loop import keep_serving
            keep_serving(run, service, server)
        return 0
    except (RunError, manifest_contract.ManifestError) as e:
        say(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; stopping")
        return 130
    finally:
        processes.stop_all()
        if "service" in locals():
            service.close()
        if "run" in locals():
            shutil.rmtree(run.work, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
