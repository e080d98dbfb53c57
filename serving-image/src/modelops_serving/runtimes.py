"""Runtimes that execute a model file: LiteRT for TFLite, TensorFlow only as a fallback.

A runtime's `run(inputs)` takes one array per signature input (in the signature's order, all with
the same batch size) and returns one array per signature output. It is called from several worker
threads at once; each thread keeps its own interpreters, so no lock is held while the model runs.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np
from modelops_contracts.signature import Signature, TensorSpec


class ModelLoadError(Exception):
    """The model file cannot be loaded or does not have the manifest's signature."""


class Runtime(Protocol):
    kind: str            # the manifest's servable kind
    platform: str        # what /v2/models/NAME reports

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def _bucket(n: int) -> int:
    """Batch sizes are padded to powers of two so each thread builds few interpreter shapes."""
    return 1 << (n - 1).bit_length()


def _check(where: str, found: list[tuple[str, np.dtype, tuple]], wanted: tuple[TensorSpec, ...]) -> None:
    """The model file's tensors (name, dtype, shape after the batch) must be the manifest's."""
    for (name, dtype, item_shape), spec in zip(found, wanted):
        if np.dtype(dtype) != np.dtype(object if spec.dtype == "string" else spec.dtype):
            raise ModelLoadError(f"{where} {spec.name!r}: the model file has {np.dtype(dtype)}, "
                                 f"the manifest says {spec.dtype}")
        if len(item_shape) != len(spec.item_shape) or any(
                want != -1 and got not in (want, -1, None) for got, want in zip(item_shape, spec.item_shape)):
            raise ModelLoadError(f"{where} {spec.name!r}: the model file has shape [-1, {', '.join(map(str, item_shape))}]"
                                 f", the manifest says {list(spec.shape)}")


class LiteRTRuntime:
    platform = "tflite"

    def __init__(self, path: Path, signature: Signature, kind: str = "tflite"):
        self.kind = kind   # tflite (compressed) or tfliteFloat32 (uncompressed): the same interpreter runs both
        from ai_edge_litert.interpreter import Interpreter  # the one heavy import of the image

        self._interpreter_class = Interpreter
        self._model = Path(path).read_bytes()
        self._local = threading.local()
        self._signature = signature
        probe = self._interpreter_class(model_content=self._model, num_threads=1)
        self._inputs = self._indices(probe, "input", signature.inputs, path)
        self._outputs = self._indices(probe, "output", signature.outputs, path)
        details = {d["index"]: d for d in probe.get_input_details() + probe.get_output_details()}
        self._item_shapes = [list(details[i]["shape"][1:]) for i in self._inputs]
        for kind, indices, specs in (("input", self._inputs, signature.inputs),
                                     ("output", self._outputs, signature.outputs)):
            _check(kind, [(details[i]["name"], details[i]["dtype"], tuple(details[i]["shape_signature"][1:]))
                          for i in indices], specs)

    @staticmethod
    def _indices(interpreter, kind: str, specs: tuple[TensorSpec, ...], path: Path) -> list[int]:
        """Tensor indices in signature order: by name through the TFLite signature, or by position for
        a one-input/one-output model whose file names its tensors differently (older exports)."""
        plain = interpreter.get_input_details() if kind == "input" else interpreter.get_output_details()
        if len(plain) != len(specs):
            raise ModelLoadError(f"{path.name}: the model file has {len(plain)} {kind}s, the manifest lists "
                                 f"{len(specs)}")
        if len(specs) == 1:
            return [plain[0]["index"]]
        runner_details = {}
        for key in interpreter.get_signature_list():
            runner = interpreter.get_signature_runner(key)
            runner_details = runner.get_input_details() if kind == "input" else runner.get_output_details()
        missing = [s.name for s in specs if s.name not in runner_details]
        if missing:
            raise ModelLoadError(f"{path.name}: the model file has no {kind} named {missing[0]!r} "
                                 f"(it has {', '.join(sorted(runner_details)) or 'no named tensors'})")
        return [runner_details[s.name]["index"] for s in specs]

    def _build(self, batch: int, item_shapes: list[tuple[int, ...]]):
        interpreter = self._interpreter_class(model_content=self._model, num_threads=1)
        for index, item_shape, built in zip(self._inputs, item_shapes, self._item_shapes):
            if batch != 1 or list(item_shape) != built:
                interpreter.resize_tensor_input(index, [batch, *item_shape])
        interpreter.allocate_tensors()
        return interpreter

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        n = len(inputs[0])
        size = _bucket(n)
        cache = getattr(self._local, "by_shape", None)
        if cache is None:
            cache = self._local.by_shape = {}
        # Keyed by the item shapes too: a dimension the signature leaves free (-1) needs its own interpreter.
        key = (size, *(a.shape[1:] for a in inputs))
        interpreter = cache.get(key)
        if interpreter is None:
            interpreter = cache[key] = self._build(size, [a.shape[1:] for a in inputs])
        for index, array in zip(self._inputs, inputs):
            if n != size:
                padded = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
                padded[:n] = array
                array = padded
            interpreter.set_tensor(index, array)
        interpreter.invoke()
        return [interpreter.get_tensor(index)[:n] for index in self._outputs]


class TensorFlowRuntime:
    """SavedModel or .keras through full TensorFlow, imported only when this runtime is chosen."""

    def __init__(self, kind: str, path: Path, signature: Signature):
        import tensorflow as tf  # deliberately lazy: not part of the default image

        self.kind = kind
        self.platform = "tensorflow_savedmodel" if kind == "savedModel" else "tensorflow_keras"
        self._tf = tf
        self._signature = signature
        self._call = self._savedmodel(tf, path) if kind == "savedModel" else self._keras(path)
        probe = self.run([np.zeros((1, *(1 if d == -1 else d for d in t.item_shape)),
                                   dtype=object if t.dtype == "string" else t.dtype) for t in signature.inputs])
        _check("output", [(t.name, o.dtype, o.shape[1:]) for t, o in zip(signature.outputs, probe)],
               signature.outputs)

    def _savedmodel(self, tf, path: Path):
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures.get("serving_default")
        if signature is None:
            raise ModelLoadError(f"{path.name}: no serving_default signature")
        self._keep = loaded  # the signature needs its object alive
        in_names = list(signature.structured_input_signature[1])
        out_names = list(signature.structured_outputs)
        if len(in_names) != len(self._signature.inputs) or len(out_names) != len(self._signature.outputs):
            raise ModelLoadError(f"{path.name}: serving_default has {len(in_names)} inputs and {len(out_names)} "
                                 f"outputs, the manifest lists {len(self._signature.inputs)} and "
                                 f"{len(self._signature.outputs)}")
        if len(in_names) > 1:
            in_names = [t.name for t in self._signature.inputs]
        if len(out_names) > 1:
            out_names = [t.name for t in self._signature.outputs]

        def call(arrays):
            result = signature(**{name: tf.constant(a) for name, a in zip(in_names, arrays)})
            return [result[name] for name in out_names]
        return call

    def _keras(self, path: Path):
        try:
            import tf_keras as keras
        except ImportError:
            import keras
        model = keras.models.load_model(str(path), compile=False)

        def call(arrays):
            out = model(arrays[0] if len(arrays) == 1 else
                        {t.name: a for t, a in zip(self._signature.inputs, arrays)}, training=False)
            if isinstance(out, dict):
                return [out[t.name] for t in self._signature.outputs]
            return list(out) if isinstance(out, (list, tuple)) else [out]
        return call

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o) for o in self._call(inputs)]
