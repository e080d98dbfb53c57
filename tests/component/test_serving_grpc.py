"""The Open Inference Protocol over gRPC, called with tritonclient.grpc against the real server process:
same answers, same refusals, same metrics and drain as the REST routes."""
import signal
from contextlib import contextmanager

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from serving_fixtures import digits, digits_dir, free_port, reference_outputs, running_server  # noqa: F401
from tensor_models import reference, two_input_dir, two_inputs  # noqa: F401

pytestmark = pytest.mark.component


@contextmanager
def with_grpc(model_dir, log_dir):
    """The server with its gRPC port open, and a tritonclient.grpc client for that port."""
    port = free_port()
    with running_server(model_dir, "digits", log_dir, grpc_port=port) as s:
        s.wait_ready()
        yield s, grpcclient.InferenceServerClient(f"127.0.0.1:{port}")


@pytest.fixture(scope="module")
def tabular(digits_dir, tmp_path_factory):
    with with_grpc(digits_dir, tmp_path_factory.mktemp("logs")) as pair:
        yield pair


@pytest.fixture(scope="module")
def two(two_input_dir, tmp_path_factory):
    with with_grpc(two_input_dir, tmp_path_factory.mktemp("logs")) as pair:
        yield pair


def test_health_and_metadata_over_grpc(tabular):
    _, client = tabular
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("digits")
    meta = client.get_model_metadata("digits", as_json=True)
    assert meta["versions"] == ["v1"] and meta["platform"] == "tflite"
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": ["-1", "64"]}]
    assert client.get_server_metadata(as_json=True)["extensions"] == ["binary_tensor_data"]
    with pytest.raises(InferenceServerException, match="model 'cats' not found"):
        client.get_model_metadata("cats")


def test_model_infer_with_raw_contents_gives_the_models_rows(tabular, digits_dir):
    server, client = tabular
    x = digits()[0][:7]
    tensor = grpcclient.InferInput("features", [7, 64], "FP32")
    tensor.set_data_from_numpy(x)          # tritonclient sends raw_input_contents
    before = server.metric("modelops_requests_total", route="grpc:ModelInfer", code="200") \
        if 'route="grpc:ModelInfer"' in server.get("/metrics").text else 0.0
    result = client.infer("digits", [tensor], request_id="g-1")
    np.testing.assert_allclose(result.as_numpy("output"), reference_outputs(digits_dir, x), rtol=1e-5, atol=1e-6)
    response = result.get_response(as_json=True)
    assert response["id"] == "g-1" and response["parameters"]["prediction_id"]["string_param"]
    assert server.metric("modelops_requests_total", route="grpc:ModelInfer", code="200") == before + 1


def test_a_two_input_model_over_grpc_matches_the_tflite_file(two, two_input_dir):
    _, client = two
    image, parity = two_inputs(4)
    tensors = [grpcclient.InferInput("parity", [4, 1], "FP32"), grpcclient.InferInput("image", [4, 8, 8, 1], "UINT8")]
    tensors[0].set_data_from_numpy(parity)
    tensors[1].set_data_from_numpy(image)
    result = client.infer("digits", tensors, outputs=[grpcclient.InferRequestedOutput("output")])
    np.testing.assert_allclose(result.as_numpy("output"), reference(two_input_dir, image=image, parity=parity),
                               atol=1e-6)


@pytest.mark.parametrize("name, datatype, shape, words", [
    ("pixels", "FP32", [1, 64], "unknown input 'pixels'; the model's inputs are input 'features' takes float32 [n, 64]"),
    ("features", "FP64", [1, 64], "wrong dtype 'FP64', input 'features' takes float32 [n, 64] (datatype FP32)"),
    ("features", "FP32", [1, 8, 8], "wrong rank, got shape [1, 8, 8]; input 'features' takes float32 [n, 64]"),
    ("features", "FP32", [2, 32], "wrong shape [2, 32]; input 'features' takes float32 [n, 64]"),
])
def test_refusals_over_grpc_are_invalid_argument_naming_the_input(tabular, name, datatype, shape, words):
    _, client = tabular
    tensor = grpcclient.InferInput(name, shape, datatype)
    tensor.set_data_from_numpy(np.ones(shape, dtype=np.float64 if datatype == "FP64" else np.float32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("digits", [tensor])
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT" and words in e.value.message()


def test_raw_bytes_that_do_not_fill_the_shape_are_refused(tabular):
    _, client = tabular
    tensor = grpcclient.InferInput("features", [2, 64], "FP32")
    tensor.set_data_from_numpy(np.ones((2, 64), np.float32))
    tensor.set_shape([3, 64])
    with pytest.raises(InferenceServerException, match=r"512 bytes do not match shape \[3, 64\]"):
        client.infer("digits", [tensor])


def test_sigterm_drains_grpc_like_http_then_closes_the_port(digits_dir, tmp_path):
    port = free_port()
    with running_server(digits_dir, "digits", tmp_path, grpc_port=port, drain_seconds=2) as s:
        s.wait_ready()
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
        tensor = grpcclient.InferInput("features", [1, 64], "FP32")
        tensor.set_data_from_numpy(np.ones((1, 64), np.float32))
        s.process.send_signal(signal.SIGTERM)
        # Draining: not ready, so no new traffic is routed here, yet calls already routed are still answered.
        assert not client.is_server_ready()
        assert client.infer("digits", [tensor]).as_numpy("output").shape == (1, 10)
        assert s.process.wait(30) == 0
        with pytest.raises(InferenceServerException):
            client.is_server_live(client_timeout=2)
