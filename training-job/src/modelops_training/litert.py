"""Running a TFLite model with the LiteRT interpreter — the runtime the serving image uses."""
from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from . import features

CHUNK_ROWS = 256


class TFLiteModel:
    """Any inputs (one array, or arrays named as the model's inputs) and the one output; batches of any size."""

    def __init__(self, model_content: bytes, num_threads: int = 1):
        self._interpreter = Interpreter(model_content=model_content, num_threads=num_threads)
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(outputs) != 1:
            raise ValueError(f"expected one output, got {len(outputs)}")
        self._inputs = {d["name"]: d for d in inputs}
        self._by_name = {}
        for key in self._interpreter.get_signature_list():
            self._by_name = {name: d["index"] for name, d in
                             self._interpreter.get_signature_runner(key).get_input_details().items()}
        self._output = outputs[0]["index"]
        self._shapes: dict[int, tuple] = {}

    def predict(self, x: features.Features) -> np.ndarray:
        n = features.count(x)
        return np.concatenate([self._invoke(features.take(x, slice(i, i + CHUNK_ROWS)))
                               for i in range(0, n, CHUNK_ROWS)])

    def _indexed(self, chunk: features.Features) -> list[tuple[int, np.ndarray]]:
        if isinstance(chunk, dict):
            return [(self._by_name[name], array) for name, array in chunk.items()]
        (detail,) = self._inputs.values()
        return [(detail["index"], chunk.astype(np.float32) if chunk.dtype.kind == "f" else chunk)]

    def _invoke(self, chunk: features.Features) -> np.ndarray:
        pairs = self._indexed(chunk)
        if any(self._shapes.get(i) != a.shape for i, a in pairs):
            for i, a in pairs:
                self._interpreter.resize_tensor_input(i, list(a.shape), strict=False)
                self._shapes[i] = a.shape
            self._interpreter.allocate_tensors()
        for i, a in pairs:
            self._interpreter.set_tensor(i, np.ascontiguousarray(a))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()
