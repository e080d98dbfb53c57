"""The real server process on 127.0.0.1: every route, both protocols, real clients, feedback, metrics."""
import asyncio

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from serving_fixtures import digits, digits_dir, reference_outputs, regression_data, regression_dir, running_server  # noqa: F401

pytestmark = pytest.mark.component


@pytest.fixture(scope="module")
def server(digits_dir, tmp_path_factory):
    with running_server(digits_dir, "digits", tmp_path_factory.mktemp("logs"), max_latency_ms=20) as s:
        s.wait_ready()
        yield s


@pytest.fixture(scope="module")
def regressor(regression_dir, tmp_path_factory):
    with running_server(regression_dir, "linear", tmp_path_factory.mktemp("logs")) as s:
        s.wait_ready()
        yield s


@pytest.fixture(scope="module")
def samples():
    x, y = digits()
    return x[:40], y[:40]


def test_probes_report_live_and_ready(server):
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    assert server.get("/v2/models/digits/ready").json() == {"name": "digits", "ready": True}


def test_tf_serving_predict_returns_the_models_rows_and_an_id(server, digits_dir, samples):
    x, _ = samples
    reply = server.post("/v1/models/digits:predict", json={"instances": x[:5].tolist()})
    assert reply.status_code == 200
    body = reply.json()
    np.testing.assert_allclose(body["predictions"], reference_outputs(digits_dir, x[:5]), rtol=1e-5, atol=1e-6)
    assert body["id"] == reply.headers["x-prediction-id"]


def test_columnar_inputs_and_named_features_mean_the_same_rows(server, digits_dir, samples):
    x, _ = samples
    rows = server.post("/v1/models/digits:predict", json={"instances": x[:2].tolist()}).json()["predictions"]
    columnar = server.post("/v1/models/digits:predict", json={"inputs": {"features": x[:2].tolist()}}).json()
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    named = server.post("/v1/models/digits:predict",
                        json={"instances": [dict(zip(names, row)) for row in x[:2].tolist()]}).json()
    np.testing.assert_allclose(columnar["outputs"], rows, rtol=1e-6)
    np.testing.assert_allclose(named["predictions"], rows, rtol=1e-6)


def test_tf_serving_model_status(server):
    status = server.get("/v1/models/digits").json()["model_version_status"][0]
    assert status["version"] == "v1" and status["state"] == "AVAILABLE"


def test_open_inference_metadata_describes_the_tensors(server):
    assert server.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = server.get("/v2/models/digits").json()
    assert meta["platform"] == "tflite" and meta["versions"] == ["v1"]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 64]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]
    assert server.get("/v2/models/digits/versions/v1").status_code == 200
    assert server.get("/v2/models/digits/versions/v9").status_code == 404


def test_open_inference_infer_with_json_tensors(server, digits_dir, samples):
    x, _ = samples
    reply = server.post("/v2/models/digits/infer", json={"id": "req-7", "inputs": [
        {"name": "features", "datatype": "FP32", "shape": [3, 64], "data": x[:3].ravel().tolist()}]})
    assert reply.status_code == 200
    body = reply.json()
    assert body["id"] == "req-7" and body["model_name"] == "digits" and body["model_version"] == "v1"
    assert body["parameters"]["prediction_id"] == reply.headers["x-prediction-id"]
    out = body["outputs"][0]
    assert out["name"] == "output" and out["shape"] == [3, 10]
    np.testing.assert_allclose(np.reshape(out["data"], (3, 10)), reference_outputs(digits_dir, x[:3]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_works_unchanged(server, digits_dir, samples, binary):
    x, _ = samples
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("digits")
    meta = client.get_model_metadata("digits")
    tensor = triton.InferInput(meta["inputs"][0]["name"], [4, 64], "FP32")
    tensor.set_data_from_numpy(x[:4], binary_data=binary)
    result = client.infer("digits", [tensor], outputs=[triton.InferRequestedOutput("output", binary_data=binary)])
    np.testing.assert_allclose(result.as_numpy("output"), reference_outputs(digits_dir, x[:4]), rtol=1e-5, atol=1e-6)
    default = client.infer("digits", [tensor])   # no outputs named: the client asks for binary outputs
    np.testing.assert_allclose(default.as_numpy("output"), result.as_numpy("output"), rtol=1e-6)


def test_many_concurrent_callers_each_get_their_own_rows(server, digits_dir, samples):
    x, _ = samples
    expected = reference_outputs(digits_dir, x)
    batches_before = server.metric("modelops_batch_rows_count")

    async def call_all():
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
            # Caller i sends rows i and i+1 (a different pair each), so a mixed-up reply cannot pass.
            replies = await asyncio.gather(*(client.post("/v1/models/digits:predict",
                                                         json={"instances": x[i % 39:i % 39 + 2].tolist()})
                                             for i in range(200)))
        return replies

    replies = asyncio.run(call_all())
    for i, reply in enumerate(replies):
        assert reply.status_code == 200
        np.testing.assert_allclose(reply.json()["predictions"], expected[i % 39:i % 39 + 2], rtol=1e-5, atol=1e-6)
    assert len({r.json()["id"] for r in replies}) == 200
    assert server.metric("modelops_batch_rows_count") - batches_before < 200   # calls were shared


def test_classification_feedback_drives_the_live_accuracy(server, digits_dir, samples):
    x, y = samples
    predicted = server.post("/v1/models/digits:predict", json={"instances": x[:10].tolist()}).json()
    answer = server.post("/v1/models/digits:feedback", json={"id": predicted["id"], "truth": y[:10].tolist()})
    assert answer.status_code == 200 and answer.json()["joined"] == 10
    by_features = server.post("/v1/models/digits:feedback", json={"instances": x[10:12].tolist(),
                                                                  "truth": y[10:12].tolist()}).json()
    assert by_features["joined"] == 2
    expected = float((reference_outputs(digits_dir, x[:12]).argmax(axis=1) == y[:12]).mean())
    assert by_features["pairs"] == 12 and by_features["metrics"]["accuracy"] == pytest.approx(expected)
    assert server.metric("modelops_live_metric", metric="accuracy") == pytest.approx(expected)
    assert server.metric("modelops_feedback_pairs") == 12
    again = server.post("/v1/models/digits:feedback", json={"id": predicted["id"], "truth": y[:10].tolist()})
    assert again.status_code == 404 and "already has feedback" in again.json()["error"]
    assert server.metric("modelops_prediction_distribution", statistic="class=0") >= 0.0


def test_regression_feedback_exports_mse_and_mae(regressor):
    x, y = regression_data()
    predicted = regressor.post("/v1/models/linear:predict", json={"instances": x[:4].tolist()}).json()
    assert np.shape(predicted["predictions"]) == (4, 1)
    regressor.post("/v1/models/linear:feedback", json={"id": predicted["id"], "truth": y[:4].tolist()})
    error = np.array(predicted["predictions"])[:, 0] - y[:4]
    assert regressor.metric("modelops_live_metric", metric="mse") == pytest.approx(float((error ** 2).mean()), rel=1e-4)
    assert regressor.metric("modelops_live_metric", metric="mae") == pytest.approx(float(np.abs(error).mean()), rel=1e-4)
    assert regressor.metric("modelops_feedback_pairs") == 4
    assert regressor.metric("modelops_prediction_distribution", statistic="p50") != 0.0


def test_metrics_expose_requests_latency_batches_queue_and_version(server):
    server.post("/v1/models/digits:predict", json={"instances": [[0] * 64]})
    server.post("/v1/models/nope:predict", json={"instances": [[0] * 64]})
    assert server.metric("modelops_requests_total", code="200", route="/v1/models/{name}:predict") >= 1
    assert server.metric("modelops_requests_total", code="404", route="/v1/models/{name}:predict") >= 1
    assert server.metric("modelops_request_seconds_count", route="/v1/models/{name}:predict") >= 2
    assert server.metric("modelops_queue_depth") == 0
    assert server.metric("modelops_model_ready") == 1
    assert server.metric("modelops_model_info", model="digits", runtime="tflite", version="v1") == 1


def test_openapi_documents_every_route(server):
    doc = server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/v1/models/{name}:predict", "/v1/models/{name}:feedback", "/v1/models/{name}", "/v2/health/live",
            "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/infer",
            "/metrics", "/openapi.json", "/v1/live"} <= set(doc["paths"])
    assert doc["paths"]["/v1/models/{name}:predict"]["post"]["requestBody"]["content"]["application/json"]


def test_unknown_routes_and_methods_are_named(server):
    assert server.get("/v3/anything").json() == {"error": "no route /v3/anything"}
    wrong = server.get("/v1/models/digits:predict")
    assert wrong.status_code == 405 and "GET" in wrong.json()["error"]
