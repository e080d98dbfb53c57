"""Version directories for the serving tests and benchmark, built with real TensorFlow.

The layout mirrors the training image's: `model.keras`, `saved_model/` (signature input
`features`, output `output`), `model.tflite`, and a `manifest.json` from the contract.
"""
from __future__ import annotations

import gzip
import io
import os
from importlib import resources
from pathlib import Path

import numpy as np

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
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)] if task == "classification" \
        else [f"x{i}" for i in range(x.shape[1])]
    manifest = Manifest(namespace="test", name="digits" if task == "classification" else "linear", version=version,
                        task=task, feature_names=names, classes=DIGITS_CLASSES if task == "classification" else [],
                        servables=servables)
    manifest.add_files(root, sorted(servables.values()))
    manifest.write(root)
    return root
