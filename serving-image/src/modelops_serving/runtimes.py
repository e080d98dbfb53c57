"""Runtimes that execute a model file: LiteRT for TFLite, TensorFlow only as a fallback.

A runtime's `run(rows)` is called from several worker threads at once; each thread keeps
its own interpreters, so no lock is held while the model runs.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np


class ModelLoadError(Exception):
    """The model file cannot be loaded or does not have the expected signature."""


class Runtime(Protocol):
    kind: str            # the manifest's servable kind
    platform: str        # what /v2/models/NAME reports
    input_width: int
    output_width: int

    def run(self, rows: np.ndarray) -> np.ndarray: ...


def _bucket(n: int) -> int:
    """Batch sizes are padded to powers of two so each thread builds few interpreter shapes."""
    return 1 << (n - 1).bit_length()


class LiteRTRuntime:
    platform = "tflite"

    def __init__(self, path: Path, kind: str = "tflite"):
        self.kind = kind   # tflite (compressed) or tfliteFloat32 (uncompressed): the same interpreter runs both
        from ai_edge_litert.interpreter import Interpreter  # the one heavy import of the image

        self._interpreter_class = Interpreter
        self._model = Path(path).read_bytes()
        self._local = threading.local()
        probe = self._build(1)
        inputs, outputs = probe.get_input_details(), probe.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(f"{path.name}: expected one input and one output, found {len(inputs)} and {len(outputs)}")
        in_shape, out_shape = inputs[0]["shape"], outputs[0]["shape"]
        if len(in_shape) != 2 or len(out_shape) != 2:
            raise ModelLoadError(f"{path.name}: expected rank-2 input and output, found {list(in_shape)} and {list(out_shape)}")
        if inputs[0]["dtype"] != np.float32 or outputs[0]["dtype"] != np.float32:
            raise ModelLoadError(f"{path.name}: expected float32 input and output")
        self.input_width, self.output_width = int(in_shape[1]), int(out_shape[1])

    def _build(self, batch: int):
        interpreter = self._interpreter_class(model_content=self._model, num_threads=1)
        index = interpreter.get_input_details()[0]["index"]
        if batch != 1:
            interpreter.resize_tensor_input(index, [batch, interpreter.get_input_details()[0]["shape"][1]])
        interpreter.allocate_tensors()
        return interpreter

    def run(self, rows: np.ndarray) -> np.ndarray:
        n = len(rows)
        size = _bucket(n)
        cache = getattr(self._local, "by_size", None)
        if cache is None:
            cache = self._local.by_size = {}
        entry = cache.get(size)
        if entry is None:
            interpreter = self._build(size)
            entry = cache[size] = (interpreter, interpreter.get_input_details()[0]["index"],
                                   interpreter.get_output_details()[0]["index"])
        interpreter, in_index, out_index = entry
        if n != size:
            padded = np.zeros((size, rows.shape[1]), dtype=np.float32)
            padded[:n] = rows
            rows = padded
        interpreter.set_tensor(in_index, rows)
        interpreter.invoke()
        return interpreter.get_tensor(out_index)[:n]


class TensorFlowRuntime:
    """SavedModel or .keras through full TensorFlow, imported only when this runtime is chosen."""

    def __init__(self, kind: str, path: Path, input_width: int):
        import tensorflow as tf  # deliberately lazy: not part of the default image

        self.kind = kind
        self.platform = "tensorflow_savedmodel" if kind == "savedModel" else "tensorflow_keras"
        self._tf = tf
        if kind == "savedModel":
            loaded = tf.saved_model.load(str(path))
            signature = loaded.signatures.get("serving_default")
            if signature is None:
                raise ModelLoadError(f"{path.name}: no serving_default signature")
            self._keep = loaded  # the signature needs its object alive
            input_name = next(iter(signature.structured_input_signature[1]))
            output_name = next(iter(signature.structured_outputs))
            self._call = lambda x: signature(**{input_name: x})[output_name]
        else:
            try:
                import tf_keras as keras
            except ImportError:
                import keras
            model = keras.models.load_model(str(path), compile=False)
            self._call = lambda x: model(x, training=False)
        probe = np.asarray(self._call(tf.zeros((1, input_width), tf.float32)))
        if probe.ndim != 2:
            raise ModelLoadError(f"{path.name}: expected a rank-2 output, got shape {list(probe.shape)}")
        self.input_width, self.output_width = input_width, int(probe.shape[1])

    def run(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._call(self._tf.constant(rows)), dtype=np.float32)
