"""What a TFLite model file itself answers, through LiteRT: the reference a served answer is compared with."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def tflite_outputs(model_path: Path, batch: np.ndarray) -> np.ndarray:
    """The model's first output for a batch of its (first) input, in the dtype the batch has."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(model_path))
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], batch)
    interpreter.invoke()
    return interpreter.get_tensor(outp["index"])


def tflite_output(model_path: Path, row: list[float]) -> np.ndarray:
    """The model's first output for one float32 input row."""
    return tflite_outputs(model_path, np.array([row], dtype=np.float32))[0]
