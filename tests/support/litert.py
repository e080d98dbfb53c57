"""What a TFLite model file itself answers, through LiteRT: the reference a served answer is compared with."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def tflite_output(model_path: Path, row: list[float]) -> np.ndarray:
    """The model's first output for one float32 input row."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], np.array([row], dtype=np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(outp["index"])[0]
