"""Running a TFLite model with the LiteRT interpreter — the runtime the serving image uses."""
from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter

CHUNK_ROWS = 256


class TFLiteModel:
    """One float32 input [batch, features], one float32 output; batches of any size."""

    def __init__(self, model_content: bytes, num_threads: int = 1):
        self._interpreter = Interpreter(model_content=model_content, num_threads=num_threads)
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"expected one input and one output, got {len(inputs)} and {len(outputs)}")
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]
        self._rows = -1

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self._invoke(x[i:i + CHUNK_ROWS]) for i in range(0, len(x), CHUNK_ROWS)])

    def _invoke(self, chunk: np.ndarray) -> np.ndarray:
        if len(chunk) != self._rows:
            self._interpreter.resize_tensor_input(self._input, list(chunk.shape), strict=False)
            self._interpreter.allocate_tensors()
            self._rows = len(chunk)
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(chunk, dtype=np.float32))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()
