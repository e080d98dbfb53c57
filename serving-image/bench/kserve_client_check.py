"""The KServe SDK's V2 REST client, unchanged, against our server: JSON and binary tensors.

Runs in the KServe venv. Usage: python kserve_client_check.py BASE_URL DATA.npz
DATA.npz holds `rows` and the `expected` outputs; exit 0 when both encodings return them.
"""
import asyncio
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def check(base: str, rows: np.ndarray, expected: np.ndarray) -> None:
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        if not (await client.is_server_live(base) and await client.is_model_ready(base, "digits")):
            raise SystemExit("kserve client: server not live/ready")
        for binary in (False, True):
            tensor = InferInput(name="features", shape=list(rows.shape), datatype="FP32")
            tensor.set_data_from_numpy(rows, binary_data=binary)
            result = await client.infer(base, InferRequest(model_name="digits", infer_inputs=[tensor]),
                                        model_name="digits")
            np.testing.assert_allclose(result.outputs[0].as_numpy(), expected, rtol=1e-5, atol=1e-6)
    finally:
        await client.close()


if __name__ == "__main__":
    data = np.load(sys.argv[2])
    asyncio.run(check(sys.argv[1], data["rows"], data["expected"]))
    print("kserve client: JSON and binary V2 requests answered correctly")
