"""Writing a trained model in the forms the serving image loads: `model.keras` and `saved_model/`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .tf_runtime import keras, tf

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
INPUT_NAME = "features"
OUTPUT_NAME = "output"


def signature(model: "keras.Model") -> dict[str, Any]:
    """The one-input, one-output signature, for the manifest's `extra`."""
    return {"input": {"name": INPUT_NAME, "dtype": "float32", "shape": [-1, int(model.inputs[0].shape[1])]},
            "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [-1, int(model.outputs[0].shape[1])]}}


def save(model: "keras.Model", root: Path) -> None:
    model.save(root / KERAS_FILE)   # the exported copy is uncompiled: no optimizer state
    num_features = int(model.inputs[0].shape[1])

    @tf.function(input_signature=[tf.TensorSpec([None, num_features], tf.float32, name=INPUT_NAME)])
    def serve(features):
        return {OUTPUT_NAME: model(features, training=False)}

    tf.saved_model.save(model, str(root / SAVED_MODEL_DIR), signatures={"serving_default": serve})


def load(root: Path) -> "keras.Model":
    return keras.models.load_model(root / KERAS_FILE, compile=False)
