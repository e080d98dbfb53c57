"""Version directories of N-d and multi-input models, made by the training image's own train() and
compress(): a cnn-classifier on builtin:digits-images, and a custom model with two named inputs."""
from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import job_config

TWO_INPUTS_MODULE = textwrap.dedent("""
    import numpy as np
    import tf_keras as keras
    from modelops_training import formats

    def load_data(config):
        digits = formats.digits_images()
        rng = np.random.default_rng(3)
        # "parity" helps a little (it is the label's parity), so the model must read both inputs.
        parity = (digits.target % 2).astype("float32")[:, None] + rng.normal(0, 0.1, (len(digits.target), 1))
        return {"image": digits.features, "parity": parity.astype("float32")}, digits.target, []

    def build_model(config, inputs):
        image = keras.Input((8, 8, 1), dtype="uint8", name="image")
        parity = keras.Input((1,), name="parity")
        x = keras.layers.Rescaling(1 / 255)(image)
        x = keras.layers.Conv2D(8, 3, activation="relu")(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Concatenate()([x, parity])
        x = keras.layers.Dense(32, activation="relu")(x)
        out = keras.layers.Dense(inputs.num_classes, activation="softmax")(x)
        return keras.Model({"image": image, "parity": parity}, out)
""")


def train_and_compress(root: Path, method: str, **model) -> Path:
    from modelops_training.compress import compress
    from modelops_training.train import train

    common = dict(model=model, training={"epochs": 6, "batchSize": 32, "learningRate": 0.003},
                  compression={"method": method}, data={"uri": "builtin:digits-images"})
    for stage, run in (("train", train), ("compress", compress)):
        report = run(job_config(root, stage=stage, **common))
        assert report.succeeded, report.message
    return job_config(root, **common).version_dir


def cached(tmp_path_factory, name: str, build) -> Path:
    root = tmp_path_factory.getbasetemp() / "tensor-models" / name
    version = root / "ml" / "digits" / "v1"
    if not (version / "model.tflite").exists():
        shutil.rmtree(root, ignore_errors=True)
        build(root)
    return version


@pytest.fixture(scope="session")
def cnn_dir(tmp_path_factory) -> Path:
    return cached(tmp_path_factory, "cnn", lambda root: train_and_compress(root, "int8", template="cnn-classifier"))


@pytest.fixture(scope="session")
def two_input_dir(tmp_path_factory) -> Path:
    def build(root: Path) -> None:
        modules = root / "modules"
        modules.mkdir(parents=True)
        (modules / "two_inputs.py").write_text(TWO_INPUTS_MODULE)
        sys.path.insert(0, str(modules))
        try:
            train_and_compress(root, "int8", template="custom", customModule="two_inputs")
        finally:
            sys.path.remove(str(modules))
    return cached(tmp_path_factory, "two-inputs", build)


def reference(model_dir, **inputs) -> np.ndarray:
    """The TFLite file's answer in this process, through its signature."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(model_dir / "model.tflite")).get_signature_runner()
    (out,) = runner(**inputs).values()
    return out


def images(n: int, seed: int = 0) -> np.ndarray:
    from modelops_training import formats
    table = formats.digits_images()
    return table.features[np.random.default_rng(seed).choice(len(table.target), n, replace=False)]


def two_inputs(n: int):
    image = images(n, seed=2)
    parity = np.linspace(0, 1, n, dtype=np.float32)[:, None]
    return image, parity
