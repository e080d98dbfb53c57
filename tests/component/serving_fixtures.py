"""Version directories for the serving tests and benchmark, built with real TensorFlow.

The layout mirrors the training image's: `model.keras`, `saved_model/` (signature input
`features`, output `output`), `model.tflite`, and a `manifest.json` from the contract.
"""
from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest

from modelops_contracts.manifest import Manifest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")   # the trainer's Keras (see modelops_training.tf_runtime)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DIGITS_CLASSES = list(range(10))


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled 8x8 digits (64 features, 10 classes): the training image's copy."""
    raw = resources.files("modelops_training.datasets").joinpath("digits.csv.gz").read_bytes()
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode()), delimiter=",", skiprows=1)
    return table[:, :64].astype(np.float32), table[:, 64].astype(np.int64)


def regression_data(rows: int = 400, features: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    y = (x @ rng.normal(size=features) + 0.5).astype(np.float32)
    return x, y


def build_version_dir(root: Path, task: str, *, tflite: bool = True, hidden: int = 64, epochs: int = 3,
                      version: str = "v1") -> Path:
    """Train a small MLP and write a version directory; returns it."""
    import tensorflow as tf
    import tf_keras as keras

    x, y = digits() if task == "classification" else regression_data()
    outputs = len(DIGITS_CLASSES) if task == "classification" else 1
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(hidden, activation="relu"),
                              keras.layers.Dense(outputs, activation="softmax" if task == "classification" else None)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy" if task == "classification" else "mse")
    model.fit(x / 16.0 if task == "classification" else x, y, epochs=epochs, batch_size=64, verbose=0)
    if task == "classification":
        # Raw pixel values in, as clients send them: fold the 1/16 scaling into the first layer.
        kernel, bias = model.layers[0].get_weights()
        model.layers[0].set_weights([kernel / 16.0, bias])

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    model.save(root / "model.keras")

    @tf.function(input_signature=[tf.TensorSpec([None, x.shape[1]], tf.float32, name="features")])
    def serve(features):
        return {"output": model(features, training=False)}

    tf.saved_model.save(model, str(root / "saved_model"), signatures={"serving_default": serve})
    servables = {"savedModel": "saved_model", "keras": "model.keras"}
    if tflite:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]   # dynamic-range, as the compression stage does
        (root / "model.tflite").write_bytes(converter.convert())
        servables["tflite"] = "model.tflite"
        # The uncompressed fallback compression also writes: float32, no optimizations.
        (root / "model-float32.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        servables["tfliteFloat32"] = "model-float32.tflite"
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)] if task == "classification" \
        else [f"x{i}" for i in range(x.shape[1])]
    manifest = Manifest(namespace="test", name="digits" if task == "classification" else "linear", version=version,
                        task=task, feature_names=names, classes=DIGITS_CLASSES if task == "classification" else [],
                        servables=servables)
    manifest.add_files(root, sorted(servables.values()))
    manifest.write(root)
    return root


# --- the real server process ------------------------------------------------------------------------


SERVE = Path(sys.executable).parent / "modelops-serve"   # the image's entrypoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(condition, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str
    log: Path

    def get(self, path: str, **kw) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **kw)

    def log_text(self) -> str:
        return self.log.read_text()

    def status(self, path: str) -> int | None:
        try:
            return self.get(path).status_code
        except httpx.TransportError:
            return None

    def metric(self, name: str, **labels) -> float:
        """One sample from /metrics, e.g. metric("modelops_requests_total", code="200", route=...)."""
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        sample = re.escape(name) + (re.escape("{" + label_text + "}") if labels else "")
        match = re.search(rf"^{sample} (\S+)$", self.get("/metrics").text, flags=re.M)
        assert match, f"{name} {labels} not in /metrics"
        return float(match.group(1))

    def wait_ready(self, timeout: float = 60) -> None:
        poll(lambda: self.status("/v2/health/ready") == 200, timeout=timeout, what=f"readiness; log:\n{self.log_text()}")


@contextmanager
def running_server(model_dir: Path, name: str, log_dir: Path, *, host: str = "127.0.0.1", port: int | None = None,
                   **settings) -> Iterator[ServerProcess]:
    """`modelops-serve` on a free port of `host` (a loopback address), configured through environment
    variables as in a pod."""
    port = port or free_port()
    env = {**os.environ, "MODELOPS_MODEL_DIR": str(model_dir), "MODELOPS_MODEL_NAME": name,
           "MODELOPS_PORT": str(port), "MODELOPS_HOST": host}
    env.update({f"MODELOPS_{key.upper()}": str(value) for key, value in settings.items()})
    log = Path(log_dir) / f"serve-{name}-{host}-{port}.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen([str(SERVE)], env=env, stdout=sink, stderr=subprocess.STDOUT)
    server = ServerProcess(process, f"http://{host}:{port}", log)
    try:
        poll(lambda: process.poll() is not None or server.status("/v2/health/live") == 200, timeout=60,
             what="the server to listen")
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log_text()}")
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def cached_version_dir(tmp_path_factory, task: str) -> Path:
    """One model per task per test session, shared by every module that asks."""
    root = tmp_path_factory.getbasetemp() / "serving-models" / task
    if not (root / "manifest.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        build_version_dir(root, task)
    return root


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    return cached_version_dir(tmp_path_factory, "classification")


@pytest.fixture(scope="session")
def regression_dir(tmp_path_factory) -> Path:
    return cached_version_dir(tmp_path_factory, "regression")


def reference_outputs(model_dir: Path, rows: np.ndarray) -> np.ndarray:
    """What the TFLite model answers, row by row, in this process: the truth the server must return."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(Path(model_dir) / "model.tflite"))
    interpreter.allocate_tensors()
    i, o = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    out = []
    for row in rows.astype(np.float32):
        interpreter.set_tensor(i, row[None, :])
        interpreter.invoke()
        out.append(interpreter.get_tensor(o)[0])
    return np.array(out)
