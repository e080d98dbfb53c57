"""Keras model → TFLite bytes, for each compression method, plus optional magnitude pruning."""
from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from . import features
from .tf_runtime import keras, tf

REPRESENTATIVE_ROWS = 256
# Fine-tuning after pruning: enough for the remaining weights to recover, short enough for a Job.
PRUNING_EPOCHS = 2
PRUNING_BATCH = 32


def to_tflite(model: "keras.Model", method: str, representative: features.Features) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if method == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif method == "dynamic-range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif method == "int8":
        return _int8(model, representative)
    elif method != "none":
        raise ValueError(f"unknown compression method {method!r}")
    return converter.convert()


# Kept in float32 by int8 (LiteRT's selective quantization): the output activations, whose 1/256 steps tie
# the probabilities near 0 and 1 that AUC ranks and log loss weighs (breast cancer: AUC 0.9942 → 0.9819).
FLOAT_OPS = ("SOFTMAX", "LOGISTIC")


def _int8(model: "keras.Model", representative: features.Features) -> bytes:
    """Integer weights and activations with float32 inputs and outputs (LiteRT's post-training integer
    quantization), except the in-model normalization and the output activation, which stay float32.

    One int8 scale covers a whole tensor: on raw table features spanning 0.05 … 2,500 (breast cancer) the
    input's scale is ~17, every small feature rounds to 0 and the model answers a constant (AUC 0.9942 → 0.5).
    Normalized, every feature spans a few units and the first Dense layer's input quantizes well.
    """
    from tensorflow.lite.python import convert as lite_convert   # mlir_quantize: no public entry point

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(representative)
    # The float model with each tensor's calibrated range, quantized below with the float-kept nodes left out
    # (what tf.lite.experimental.QuantizationDebugger does, which cannot keep per-tensor Dense scales).
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    # Per-channel Dense quantization stores a scale and an int64 zero point per output unit for both
    # kernel and bias (~24 bytes a unit): on our MLPs that overhead alone kept int8 under 3.5× smaller.
    # Per-tensor scales lost no measurable accuracy there (docs/bench-training.md).
    return lite_convert.mlir_quantize(calibrated, disable_per_channel_for_dense_layers=True,
                                      denylisted_ops=list(FLOAT_OPS),
                                      denylisted_nodes=normalization_nodes(model, calibrated))


def normalization_nodes(model: "keras.Model", tflite: bytes) -> list[str]:
    """The TFLite nodes (named by their output tensor) of the model's Normalization layers."""
    layers = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Normalization)]
    if not layers:
        return []
    interpreter = Interpreter(model_content=tflite)
    tensors = interpreter.get_tensor_details()
    outputs = [tensors[i]["name"] for op in interpreter._get_ops_details() for i in op["outputs"]]
    return [name for name in outputs if any(f"/{layer}/" in name for layer in layers)]


def _representative(x: features.Features):
    sample = features.take(x, slice(0, REPRESENTATIVE_ROWS))

    def generate():
        for i in range(features.count(sample)):
            one = features.take(sample, slice(i, i + 1))
            # Named by input for several inputs; a float table is fed as float32, as the model's input is.
            yield dict(one) if isinstance(one, dict) else [one.astype(np.float32) if one.dtype.kind == "f" else one]
    return generate


def prune(model: "keras.Model", sparsity: float, x: np.ndarray, y: np.ndarray, loss: str) -> "keras.Model":
    """Zero the smallest `sparsity` fraction of each Dense kernel, fine-tune, and strip the pruning wrappers."""
    import tensorflow_model_optimization as tfmot

    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)

    def wrap(layer):
        # Only Dense layers: the Normalization layer holds statistics, not weights to prune. Returning the
        # trained layer objects themselves keeps their weights in the clone.
        if isinstance(layer, keras.layers.Dense):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruned = keras.models.clone_model(model, clone_function=wrap)
    pruned.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    pruned.fit(x, y, epochs=PRUNING_EPOCHS, batch_size=PRUNING_BATCH, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(pruned)


def sparsity_of(model: "keras.Model") -> float:
    kernels = [layer.kernel.numpy() for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    total = sum(k.size for k in kernels)
    return float(sum(np.sum(k == 0) for k in kernels) / total) if total else 0.0
