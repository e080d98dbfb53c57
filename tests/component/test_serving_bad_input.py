"""Bad input gets a 4xx naming the problem, never a 500 and never a dead worker; fuzzing finds no 5xx."""
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving_fixtures import digits_dir, running_server  # noqa: F401

pytestmark = pytest.mark.component

ROW = [1.0] * 64


@pytest.fixture(scope="module")
def server(digits_dir, tmp_path_factory):
    with running_server(digits_dir, "digits", tmp_path_factory.mktemp("logs"), max_body_bytes=20000,
                        max_instances=50) as s:
        s.wait_ready()
        yield s


def v2_tensor(**overrides):
    return {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 64], "data": ROW, **overrides}]}


@pytest.mark.parametrize("path, content, status, words", [
    ("/v1/models/digits:predict", b'{"instances": [[1, 2', 400, "malformed JSON"),
    ("/v1/models/digits:predict", b"", 400, "malformed JSON"),
    ("/v1/models/digits:predict", json.dumps({"instances": [[1.0] * 63]}), 400, "wrong shape"),
    ("/v1/models/digits:predict", json.dumps({"instances": ROW}), 400, "wrong rank"),
    ("/v1/models/digits:predict", json.dumps({"instances": [["x"] * 64]}), 400, "wrong dtype"),
    ("/v1/models/digits:predict", '{"instances": [[' + ",".join(["1e39"] * 64) + "]]}", 400, "NaN or Inf"),
    ("/v1/models/digits:predict", json.dumps({"instances": [[True, 2.5] + ROW[2:]]}), 400,
     "instances: wrong dtype, numbers expected (found true/false); input 'features' takes float32 [n, 64]"),
    ("/v2/models/digits/infer", json.dumps(v2_tensor(data=[True, 2.5] + ROW[2:])), 400,
     "inputs[0].data: wrong dtype, numbers expected (found true/false)"),
    ("/v1/models/digits:predict", '{"instances": [[NaN' + ",1" * 63 + "]]}", 400, "malformed JSON"),
    ("/v1/models/digits:predict", json.dumps({"instances": []}), 400, "empty batch"),
    ("/v1/models/digits:predict", json.dumps({"instances": [[0] * 64] * 51}), 400, "too many instances"),
    ("/v1/models/digits:predict", json.dumps({"instances": [[0.5] * 64] * 200}), 413, "over the limit"),
    ("/v1/models/cats:predict", json.dumps({"instances": [ROW]}), 404, "model 'cats' not found"),
    ("/v2/models/cats/infer", json.dumps(v2_tensor()), 404, "model 'cats' not found"),
    ("/v2/models/digits/infer", json.dumps(v2_tensor(datatype="BYTES")), 400, "wrong dtype"),
    ("/v2/models/digits/infer", json.dumps(v2_tensor(shape=[64])), 400, "wrong rank"),
    ("/v2/models/digits/infer", json.dumps(v2_tensor(shape=[2, 64])), 400, "do not fill"),
    ("/v2/models/digits/infer", json.dumps(v2_tensor(shape=[0, 64], data=[])), 400, "empty batch"),
    ("/v2/models/digits/infer", json.dumps(v2_tensor(name="pixels")), 400, "unknown input 'pixels'"),
    ("/v2/models/digits/infer", b"[]", 400, "JSON object"),
    ("/v1/models/digits:feedback", json.dumps({"id": "nope", "truth": [1]}), 404, "unknown"),
    ("/v1/models/digits:feedback", json.dumps({"truth": [1]}), 400, "prediction \"id\""),
])
def test_each_bad_request_gets_a_4xx_naming_the_problem(server, path, content, status, words):
    reply = server.post(path, content=content, headers={"content-type": "application/json"})
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"]


def test_a_streamed_body_over_the_limit_is_cut_off(server):
    def chunks():
        for _ in range(30):
            yield b" " * 1000
    reply = server.post("/v1/models/digits:predict", content=chunks())
    assert reply.status_code == 413 and "over the limit of 20000 bytes" in reply.json()["error"]


def test_a_compressed_body_is_refused_by_name(server):
    reply = server.post("/v1/models/digits:predict", content=b"\x1f\x8b", headers={"content-encoding": "gzip"})
    assert reply.status_code == 415 and "gzip" in reply.json()["error"]


def test_the_server_keeps_serving_after_bad_input(server):
    assert server.post("/v1/models/digits:predict", json={"instances": [ROW]}).status_code == 200
    assert "internal error" not in server.log_text() and "Traceback" not in server.log_text()


# --- fuzzing ----------------------------------------------------------------------------------------

numbers = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True), st.just(0.5))
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=5))
json_values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                           st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=40)
rows = st.lists(st.lists(numbers, min_size=0, max_size=66), min_size=0, max_size=4)
tensors = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["features", "output", "", "x"]),
    "datatype": st.sampled_from(["FP32", "FP64", "INT32", "BYTES", "BOOL", "fp32"]),
    "shape": st.lists(st.integers(-2, 70), max_size=3),
    "data": st.one_of(st.lists(numbers, max_size=130), rows, json_values),
    "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "binary_data"]), json_values, max_size=2),
})
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"instances": st.one_of(rows, json_values), "inputs": st.one_of(rows, json_values),
                                        "id": json_values, "truth": json_values}),
    st.fixed_dictionaries({"inputs": st.lists(tensors, max_size=2)},
                          optional={"outputs": st.lists(st.dictionaries(st.sampled_from(["name", "parameters"]),
                                                                        json_values), max_size=2),
                                    "parameters": st.dictionaries(st.sampled_from(["binary_data_output"]), json_values)}),
)
paths = st.one_of(st.sampled_from(["/v1/models/digits:predict", "/v1/models/digits:feedback", "/v1/models/digits",
                                   "/v2/models/digits/infer", "/v2/models/digits/ready", "/v2/models/digits",
                                   "/v2/health/ready", "/v2/models/digits/versions/v1/infer", "/openapi.json"]),
                  st.text(alphabet="/:abcdefv12{}%", max_size=30).map(lambda p: "/" + p))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(path=paths, method=st.sampled_from(["GET", "POST", "PUT"]), body=bodies,
       raw=st.one_of(st.none(), st.binary(max_size=64)), header=st.one_of(st.none(), st.integers(-5, 400).map(str),
                                                                          st.just("abc")))
def test_fuzzed_requests_never_get_a_5xx(server, path, method, body, raw, header):
    content = json.dumps(body, allow_nan=True).encode() + (raw or b"")
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["inference-header-content-length"] = header
    reply = httpx.request(method, server.url + path, content=content if method != "GET" else None,
                          headers=headers, timeout=10)
    assert reply.status_code < 500, (reply.status_code, reply.text)
    if reply.status_code >= 400:
        assert reply.json()["error"]
