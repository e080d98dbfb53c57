"""Writing a trained model in the forms the serving image loads: `model.keras` and `saved_model/`,
and reading its signature for the manifest."""
from __future__ import annotations

from pathlib import Path

from modelops_contracts.signature import BATCH, DEFAULT_OUTPUT, Signature, TensorSpec

from .tf_runtime import keras, tf

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"


def _spec(name: str, tensor) -> TensorSpec:
    dtype = "string" if tensor.dtype == tf.string else tensor.dtype.name
    return TensorSpec(name, dtype, (BATCH, *(BATCH if d is None else int(d) for d in tensor.shape[1:])))


def output_names(model: "keras.Model") -> list[str]:
    """A single output keeps the name clients have always used; several keep their Keras names."""
    return [DEFAULT_OUTPUT] if len(model.outputs) == 1 else list(model.output_names)


def signature(model: "keras.Model") -> Signature:
    """Every input (by its Keras Input name) and output, for the manifest and the serving signature."""
    return Signature(inputs=tuple(_spec(n, t) for n, t in zip(model.input_names, model.inputs)),
                     outputs=tuple(_spec(n, t) for n, t in zip(output_names(model), model.outputs)))


def call(model: "keras.Model", inputs: dict) -> dict:
    """The model on named inputs, returning named outputs (the shape of every exported signature)."""
    out = model(inputs[model.input_names[0]] if len(model.inputs) == 1 else inputs, training=False)
    if isinstance(out, dict):
        return {name: out[name] for name in model.output_names}
    return dict(zip(output_names(model), out if isinstance(out, (list, tuple)) else [out]))


def save(model: "keras.Model", root: Path) -> None:
    model.save(root / KERAS_FILE)   # the exported copy is uncompiled: no optimizer state
    sig = signature(model)
    specs = [tf.TensorSpec([None, *(None if d == BATCH else d for d in t.item_shape)], t.dtype, name=t.name)
             for t in sig.inputs]
    names = [t.name for t in sig.inputs]

    @tf.function(input_signature=specs)
    def serve(*args):
        return call(model, dict(zip(names, args)))

    tf.saved_model.save(model, str(root / SAVED_MODEL_DIR), signatures={"serving_default": serve})


def load(root: Path) -> "keras.Model":
    return keras.models.load_model(root / KERAS_FILE, compile=False)
