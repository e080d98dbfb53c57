"""Request bodies of both protocols become float32 rows, or a 400 that names the problem."""
import json

import numpy as np
import pytest

from modelops_serving import protocol_v1, protocol_v2
from modelops_serving.errors import HttpError

NAMES = ["a", "b", "c"]


def v1(body):
    return protocol_v1.parse_predict(body, width=3, max_rows=4, feature_names=NAMES)


def v2(request: dict, binary: bytes = b"", header: bool = False):
    head = json.dumps(request).encode()
    return protocol_v2.parse_infer(head + binary, str(len(head)) if header else None, width=3, max_rows=4)


def test_row_and_columnar_formats_give_the_same_rows():
    rows, key = v1({"instances": [[1, 2, 3], [4, 5, 6]]})
    assert key == "predictions" and rows.dtype == np.float32 and rows.tolist() == [[1, 2, 3], [4, 5, 6]]
    columnar, key = v1({"inputs": {"features": [[1, 2, 3], [4, 5, 6]]}})
    assert key == "outputs" and columnar.tolist() == rows.tolist()


def test_instances_may_name_their_features():
    rows, _ = v1({"instances": [{"c": 3, "a": 1, "b": 2}, {"features": [4, 5, 6]}]})
    assert rows.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("body, words", [
    ([[1, 2, 3]], "JSON object"),
    ({"instances": [[1, 2, 3]], "inputs": [[1, 2, 3]]}, "exactly one"),
    ({"instances": []}, "empty batch"),
    ({"instances": [[1, 2]]}, "wrong shape"),
    ({"instances": [1, 2, 3]}, "wrong rank"),
    ({"instances": [[[1, 2, 3]]]}, "wrong rank"),
    ({"instances": [[1, 2, 3], [1, 2]]}, "ragged"),
    ({"instances": [["1", "2", "3"]]}, "wrong dtype"),
    ({"instances": [[True, False, True]]}, "wrong dtype"),
    ({"instances": [[1, None, 3]]}, "wrong dtype"),
    ({"instances": [[1, 2, 1e39]]}, "NaN or Inf"),
    ({"instances": [[1, 2, 3]] * 5}, "too many instances"),
    ({"instances": [[1, 2, 3]] * 5 + [[1]]}, "too many instances"),   # counted before any array is built
    ({"instances": [{"a": 1, "b": 2}]}, "missing features ['c']"),
    ({"inputs": {"pixels": [[1, 2, 3]]}}, "one input named 'features'"),
    ({"instances": "rows"}, "list of rows"),
])
def test_bad_v1_bodies_are_refused_with_the_reason(body, words):
    with pytest.raises(HttpError) as e:
        v1(body)
    assert e.value.status == 400 and words in e.value.message


def tensor(**overrides):
    return {"name": "features", "datatype": "FP32", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6], **overrides}


def binary_tensor(size, **overrides):
    spec = tensor(parameters={"binary_data_size": size}, **overrides)
    del spec["data"]
    return spec


def test_v2_json_and_binary_tensors_give_the_same_rows():
    assert v2({"inputs": [tensor()]}).rows.tolist() == [[1, 2, 3], [4, 5, 6]]
    nested = v2({"inputs": [tensor(data=[[1, 2, 3], [4, 5, 6]])]})
    raw = np.arange(1, 7, dtype="<f4").tobytes()
    binary = v2({"id": "r1", "inputs": [binary_tensor(24)]}, raw, header=True)
    assert nested.rows.tolist() == binary.rows.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert binary.id == "r1"


def test_v2_binary_output_is_chosen_per_output_or_for_the_whole_request():
    assert v2({"inputs": [tensor()], "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}).binary_output
    assert v2({"inputs": [tensor()], "parameters": {"binary_data_output": True}}).binary_output
    assert not v2({"inputs": [tensor()]}).binary_output


@pytest.mark.parametrize("request_, words", [
    ({"inputs": [tensor(name="x")]}, "unknown input 'x'"),
    ({"inputs": [tensor(datatype="INT64")]}, "wrong dtype"),
    ({"inputs": [tensor(datatype="FP32", data=["a"] * 6)]}, "wrong dtype"),
    ({"inputs": [tensor(shape=[6])]}, "wrong rank"),
    ({"inputs": [tensor(shape=[3, 2])]}, "wrong shape"),
    ({"inputs": [tensor(shape=[2, 3], data=[1, 2, 3])]}, "do not fill"),
    ({"inputs": [tensor(shape=[0, 3], data=[])]}, "empty batch"),
    ({"inputs": [tensor(shape=[5, 3], data=[1] * 15)]}, "too many instances"),
    ({"inputs": [tensor(), tensor()]}, "exactly one input"),
    ({"inputs": [tensor()], "outputs": [{"name": "probabilities"}]}, "unknown output"),
    ({"inputs": [tensor(shape=[-1, 3])]}, "non-negative integers"),
])
def test_bad_v2_requests_are_refused_with_the_reason(request_, words):
    with pytest.raises(HttpError) as e:
        v2(request_)
    assert e.value.status == 400 and words in e.value.message


def test_v2_binary_size_must_match_the_shape():
    with pytest.raises(HttpError) as e:
        v2({"inputs": [binary_tensor(20)]}, b"\0" * 20, header=True)
    assert "does not match shape" in e.value.message


def test_v2_nan_in_binary_data_is_refused():
    with pytest.raises(HttpError) as e:
        v2({"inputs": [binary_tensor(24)]}, np.array([1, 2, np.nan, 4, 5, 6], dtype="<f4").tobytes(), header=True)
    assert "NaN" in e.value.message


def test_v2_binary_response_carries_its_header_length():
    out = np.array([[0.25, 0.75]], dtype=np.float32)
    body, length = protocol_v2.encode_infer("m", "v1", "r1", out, True, "p-1")
    header = json.loads(body[:length])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 8
    assert np.frombuffer(body[length:], dtype="<f4").tolist() == [0.25, 0.75]
    body, length = protocol_v2.encode_infer("m", "v1", "r1", out, False, "p-1")
    assert length is None and json.loads(body)["outputs"][0]["data"] == [0.25, 0.75]
