"""KServe's Python model server with a custom `kserve.Model` running the same TFLite file on LiteRT.

The fair, strongest peer: the same interpreter our server uses, one interpreter resized to the
request's batch, gRPC and per-request latency logging off. Runs in its own virtualenv
(kserve pins many dependencies): ~/.cache/modelops/bench-kserve-venv.
Usage: python kserve_litert_server.py MODEL_TFLITE PORT
"""
import sys

import kserve
import numpy as np
from ai_edge_litert.interpreter import Interpreter


class LiteRTModel(kserve.Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self.interpreter = Interpreter(model_path=self.path, num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch = 1
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        rows = np.asarray(payload["instances"], dtype=self.input["dtype"])   # float32 rows, or uint8 images
        if len(rows) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], rows.shape)
            self.interpreter.allocate_tensors()
            self.batch = len(rows)
        self.interpreter.set_tensor(self.input["index"], rows)
        self.interpreter.invoke()
        return {"predictions": self.interpreter.get_tensor(self.output).tolist()}


if __name__ == "__main__":
    path, port = sys.argv[1], int(sys.argv[2])
    kserve.ModelServer(http_port=port, workers=1, enable_grpc=False, enable_latency_logging=False).start(
        [LiteRTModel("digits", path)])
