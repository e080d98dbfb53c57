"""N-d and multi-input models end to end: trained and compressed by the training image, served by the
real server process, called through every protocol; refusals name the input and what it takes."""
import json

import numpy as np
import pytest
import tritonclient.http as triton

from modelops_contracts import manifest as mf
from serving_fixtures import running_server
from tensor_models import cnn_dir, images, reference, two_input_dir, two_inputs  # noqa: F401

pytestmark = pytest.mark.component


@pytest.fixture(scope="module")
def cnn(cnn_dir, tmp_path_factory):
    with running_server(cnn_dir, "digits", tmp_path_factory.mktemp("logs"), max_latency_ms=5) as s:
        s.wait_ready()
        yield s


@pytest.fixture(scope="module")
def two(two_input_dir, tmp_path_factory):
    with running_server(two_input_dir, "digits", tmp_path_factory.mktemp("logs")) as s:
        s.wait_ready()
        yield s


def test_the_trainer_records_the_signature_and_compression_keeps_it(cnn_dir, two_input_dir):
    cnn_manifest = mf.verify(cnn_dir)
    assert cnn_manifest.signature.to_dict() == {
        "inputs": [{"name": "image", "dtype": "uint8", "shape": [-1, 8, 8, 1]}],
        "outputs": [{"name": "output", "dtype": "float32", "shape": [-1, 10]}]}
    assert cnn_manifest.servables["tflite"] == "model.tflite" and cnn_manifest.extra["compression"]["method"] == "int8"
    two_manifest = mf.verify(two_input_dir)
    assert [(t.name, t.dtype, t.shape) for t in two_manifest.signature.inputs] == [
        ("image", "uint8", (-1, 8, 8, 1)), ("parity", "float32", (-1, 1))]
    assert two_manifest.metrics["accuracy"] > 0.8


def test_the_cnn_int8_model_keeps_its_accuracy(cnn_dir):
    compression = mf.verify(cnn_dir).extra["compression"]
    assert compression["metricAfter"] >= 0.85 and compression["degradation"] <= 0.02


def test_metadata_reports_the_true_signature(cnn, two):
    meta = cnn.get("/v2/models/digits").json()
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 8, 8, 1]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]
    assert [i["name"] for i in two.get("/v2/models/digits").json()["inputs"]] == ["image", "parity"]


def test_a_uint8_image_batch_through_every_protocol_gives_the_models_answer(cnn, cnn_dir):
    batch = images(32)
    truth = reference(cnn_dir, image=batch)
    client = triton.InferenceServerClient(cnn.url.removeprefix("http://"))
    tensor = triton.InferInput("image", list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(batch, binary_data=True)      # raw bytes after the JSON header
    binary = client.infer("digits", [tensor]).as_numpy("output")
    v2_json = cnn.post("/v2/models/digits/infer", json={"inputs": [
        {"name": "image", "datatype": "UINT8", "shape": list(batch.shape), "data": batch.tolist()}]}).json()
    rows = cnn.post("/v1/models/digits:predict", json={"instances": batch.tolist()}).json()["predictions"]
    columns = cnn.post("/v1/models/digits:predict", json={"inputs": {"image": batch.tolist()}}).json()["outputs"]
    for answer in (binary, np.reshape(v2_json["outputs"][0]["data"], (32, 10)), rows, columns):
        np.testing.assert_allclose(answer, truth, atol=1e-6)


def test_concurrent_single_images_are_batched_and_each_gets_its_own_answer(cnn, cnn_dir):
    import concurrent.futures
    batch = images(24, seed=1)
    truth = reference(cnn_dir, image=batch)

    def one(i):
        return cnn.post("/v1/models/digits:predict", json={"instances": batch[i:i + 1].tolist()}).json()["predictions"][0]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(len(batch))))
    np.testing.assert_allclose(answers, truth, atol=1e-6)


def test_a_two_input_model_answers_the_same_through_every_protocol(two, two_input_dir):
    image, parity = two_inputs(5)
    truth = reference(two_input_dir, image=image, parity=parity)
    rows = two.post("/v1/models/digits:predict", json={"instances": [
        {"image": im.tolist(), "parity": p.tolist()} for im, p in zip(image, parity)]}).json()["predictions"]
    columns = two.post("/v1/models/digits:predict", json={"inputs": {
        "parity": parity.tolist(), "image": image.tolist()}}).json()["outputs"]
    v2_json = two.post("/v2/models/digits/infer", json={"inputs": [
        {"name": "parity", "datatype": "FP32", "shape": [5, 1], "data": parity.ravel().tolist()},
        {"name": "image", "datatype": "UINT8", "shape": [5, 8, 8, 1], "data": image.ravel().tolist()}]}).json()
    client = triton.InferenceServerClient(two.url.removeprefix("http://"))
    tensors = [triton.InferInput("image", [5, 8, 8, 1], "UINT8"), triton.InferInput("parity", [5, 1], "FP32")]
    tensors[0].set_data_from_numpy(image, binary_data=True)
    tensors[1].set_data_from_numpy(parity, binary_data=False)    # JSON and binary inputs in one request
    binary = client.infer("digits", tensors, outputs=[triton.InferRequestedOutput("output", binary_data=True)])
    for answer in (rows, columns, np.reshape(v2_json["outputs"][0]["data"], (5, 10)), binary.as_numpy("output")):
        np.testing.assert_allclose(answer, truth, atol=1e-6)


IMAGE = [[[0]] * 8] * 8


@pytest.mark.parametrize("body, words", [
    ({"inputs": [{"name": "img", "datatype": "UINT8", "shape": [1, 8, 8, 1], "data": [0] * 64}]},
     "unknown input 'img'; the model's inputs are input 'image' takes uint8 [n, 8, 8, 1]"),
    ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 8, 8, 1], "data": [0] * 64}]},
     "wrong dtype 'FP32', input 'image' takes uint8 [n, 8, 8, 1] (datatype UINT8)"),
    ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 8, 8], "data": [0] * 64}]},
     "wrong rank, got shape [1, 8, 8]; input 'image' takes uint8 [n, 8, 8, 1]"),
    ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 4, 16, 1], "data": [0] * 64}]},
     "wrong shape [1, 4, 16, 1]; input 'image' takes uint8 [n, 8, 8, 1]"),
    ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 8, 8, 1], "data": [300] * 64}]},
     "outside uint8's range [0, 255]"),
])
def test_v2_refusals_name_the_input_and_what_it_takes(cnn, body, words):
    reply = cnn.post("/v2/models/digits/infer", json=body)
    assert reply.status_code == 400 and words in reply.json()["error"], reply.text


@pytest.mark.parametrize("body, words", [
    ({"instances": [{"image": IMAGE}]}, "expected an object with exactly the inputs ['image', 'parity']"),
    ({"inputs": {"image": [IMAGE], "parity": [[0.5, 0.5]]}},
     "wrong shape [1, 2]; input 'parity' takes float32 [n, 1]"),
    ({"inputs": {"image": [IMAGE], "parity": [[True]]}}, "input 'parity' takes float32 [n, 1]"),
    ({"inputs": {"image": [IMAGE, IMAGE], "parity": [[0.5]]}}, "differ in batch size"),
    ({"inputs": [IMAGE]}, "several inputs; give an object keyed by input name"),
])
def test_rest_refusals_for_a_two_input_model_name_the_input(two, body, words):
    reply = two.post("/v1/models/digits:predict", content=json.dumps(body))
    assert reply.status_code == 400 and words in reply.json()["error"], reply.text


@pytest.mark.parametrize("servable", ["savedModel", "keras"])
def test_a_two_input_model_served_by_tensorflow_takes_the_same_requests(two_input_dir, tmp_path, servable):
    """The fallback runtimes (SavedModel signature, .keras) take named inputs too, answering as Keras does."""
    from modelops_training import export
    image, parity = two_inputs(3)
    truth = export.load(two_input_dir).predict({"image": image, "parity": parity}, verbose=0)
    with running_server(two_input_dir, "digits", tmp_path, servable=servable) as s:
        s.wait_ready(timeout=120)
        assert s.get("/v2/models/digits").json()["platform"].startswith("tensorflow_")
        reply = s.post("/v1/models/digits:predict", json={"inputs": {"image": image.tolist(),
                                                                     "parity": parity.tolist()}})
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(reply.json()["outputs"], truth, atol=1e-5)
