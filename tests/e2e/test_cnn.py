"""The image example through the operator on the real node: `examples/digits-cnn.yaml` (a CNN on the bundled
digits as 8×8×1 uint8 images, int8-compressed) applied as a user would, Ready, then a batch of raw pixels sent
from a pod over Open Inference V2 with the binary extension and over gRPC (the Service's port 9000) answers
what the compressed model file itself answers.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from modelops_contracts import manifest as artifact_manifest
from modelops_training import formats
from tests.e2e.pipeline_fixtures import (
    READY_TIMEOUT_S, ModelNamespace, apply, example, image_refs, record_timing, run_pod, script_command, wait_ready,
)
from tests.support.kube import kubectl_json
from tests.support.litert import tflite_outputs

# The first test also waits for the session's node, image import, operator install and the first training.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

MODEL = "digits-cnn"
BATCH = 5
# The node has 2 CPUs: the example asks for a whole one to train; half leaves room for the operator, CoreDNS,
# metrics-server, two serving pods and the client.
CNN_ON_TWO_CPUS = {"training": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                               "limits": {"memory": "3Gi"}}}}


@pytest.fixture(scope="module")
def cnn(model_namespace: ModelNamespace) -> ModelNamespace:
    apply(model_namespace.name, example("digits-cnn.yaml", CNN_ON_TWO_CPUS))
    record_timing("digits-cnn apply->Ready (s)", wait_ready(model_namespace.name, MODEL, READY_TIMEOUT_S))
    return model_namespace


def images() -> tuple[np.ndarray, np.ndarray]:
    digits = formats.digits_images()
    return digits.features[-BATCH:], digits.target[-BATCH:]


def test_the_cnn_is_served_int8_with_its_image_signature(cnn: ModelNamespace):
    status = kubectl_json("get", "md", MODEL, "-n", cnn.name)["status"]
    assert status["modelVersion"] == "v1" and status["ready"] == "2/2", status
    served = artifact_manifest.read(cnn.version_dir(MODEL, "v1"))
    assert "tflite" in served.servables, served.servables
    (image,) = served.signature.inputs
    assert (image.name, image.dtype, list(image.shape)) == ("image", "uint8", [-1, 8, 8, 1])


def test_raw_pixels_over_v2_binary_and_grpc_equal_the_local_tflite_model(cnn: ModelNamespace):
    batch, truth = images()
    log = run_pod(cnn.name, "probe-cnn", image_refs()["SERVING_IMAGE"], script_command(
        "image_probe_client.py", "--host", f"{MODEL}.{cnn.name}.svc.cluster.local", "--model", MODEL,
        "--input", "image", "--shape", json.dumps(list(batch.shape)),
        "--pixels", base64.b64encode(batch.tobytes()).decode()), timeout=180)
    answers = json.loads(log.strip().splitlines()[-1])
    version_dir = cnn.version_dir(MODEL, "v1")
    local = tflite_outputs(version_dir / artifact_manifest.read(version_dir).servables["tflite"], batch)

    binary = answers["v2_binary"]
    assert binary["status"] == 200, binary
    assert binary["outputs"][0]["shape"] == [BATCH, 10] and binary["outputs"][0]["datatype"] == "FP32", binary
    np.testing.assert_allclose(np.reshape(binary["output"], (BATCH, 10)), local, atol=1e-6)
    over_grpc = answers["grpc"]
    assert over_grpc["metadata"]["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 8, 8, 1]}]
    assert over_grpc["model_version"] == "v1" and over_grpc["outputs"][0]["shape"] == [BATCH, 10], over_grpc
    np.testing.assert_allclose(np.reshape(over_grpc["output"], (BATCH, 10)), local, atol=1e-6)
    # The compressed CNN still reads digits: most of the batch is classified as labelled.
    assert (local.argmax(axis=1) == truth).sum() >= BATCH - 1, (local.argmax(axis=1), truth)
