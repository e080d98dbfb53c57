"""Keras model → TFLite bytes, for each compression method, plus optional magnitude pruning."""
from __future__ import annotations

import numpy as np

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
        # Full-integer weights and activations; the inputs and output keep their dtypes (float32 rows, uint8
        # images) so clients do not change. Calibration runs on training examples (images included).
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Per-channel Dense quantization stores a scale and an int64 zero point per output unit for both
        # kernel and bias (~24 bytes a unit): on our MLPs that overhead alone kept int8 under 3.5× smaller.
        # Per-tensor scales lost no measurable accuracy there (docs/bench-training.md).
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif method != "none":
        raise ValueError(f"unknown compression method {method!r}")
    return converter.convert()


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
