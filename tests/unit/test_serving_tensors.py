"""Request bodies of both protocols become float32 rows, or a 400 that names the problem."""
import json

import numpy as np
import pytest

from modelops_contracts.signature import Signature, TensorSpec, tabular
from modelops_serving import protocol_v1, protocol_v2
from modelops_serving.errors import HttpError

NAMES = ["a", "b", "c"]
TABLE = tabular(3, 2)


def v1(body, signature=TABLE):
    inputs, key = protocol_v1.parse_predict(body, signature=signature, max_rows=4, feature_names=NAMES)
    return (inputs[0] if len(inputs) == 1 else inputs), key


def v2_request(request: dict, binary: bytes = b"", header: bool = False, signature=TABLE):
    head = json.dumps(request).encode()
    return protocol_v2.parse_infer(head + binary, str(len(head)) if header else None, signature=signature,
                                   max_rows=4)


def v2(request: dict, binary: bytes = b"", header: bool = False):
    return v2_request(request, binary, header)


def test_row_and_columnar_formats_give_the_same_rows():
    rows, key = v1({"instances": [[1, 2, 3], [4, 5, 6]]})
    assert key == "predictions" and rows.dtype == np.float32 and rows.tolist() == [[1, 2, 3], [4, 5, 6]]
    columnar, key = v1({"inputs": {"features": [[1, 2, 3], [4, 5, 6]]}})
    assert key == "outputs" and columnar.tolist() == rows.tolist()
    bare, _ = v1({"inputs": [[1, 2, 3], [4, 5, 6]]})
    assert bare.tolist() == rows.tolist()


def test_instances_may_name_their_features():
    rows, _ = v1({"instances": [{"c": 3, "a": 1, "b": 2}, {"features": [4, 5, 6]}]})
    assert rows.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("body, words", [
    ([[1, 2, 3]], "JSON object"),
    ({"instances": [[1, 2, 3]], "inputs": [[1, 2, 3]]}, "exactly one"),
    ({"instances": []}, "empty batch"),
    ({"instances": [[1, 2]]}, "wrong shape [1, 2]; input 'features' takes float32 [n, 3]"),
    ({"instances": [1, 2, 3]}, "wrong rank"),
    ({"instances": [[[1, 2, 3]]]}, "wrong rank"),
    ({"instances": [[1, 2, 3], [1, 2]]}, "ragged"),
    ({"instances": [["1", "2", "3"]]}, "wrong dtype"),
    ({"instances": [[True, False, True]]}, "wrong dtype"),
    ({"instances": [[1, None, 3]]}, "wrong dtype"),
    ({"instances": [[1, 2, 1e39]]}, "NaN or Inf"),
    ({"instances": [[1, 2, 3]] * 5}, "too many instances"),
    ({"instances": [[1, 2, 3]] * 5 + [[1]]}, "instances: too many instances, 6 > limit 4"),   # before any array
    ({"instances": [1.0] * 5}, "wrong rank"),   # five numbers are one row given flat, not five instances
    ({"inputs": {"features": [[1, 2, 3]] * 5 + [[1]]}}, "inputs.features: too many instances, 6 > limit 4"),
    ({"instances": [{"a": 1, "b": 2}]}, "missing features ['c']"),
    ({"inputs": {"pixels": [[1, 2, 3]]}}, "unknown input 'pixels'; the model's inputs are input 'features' takes"),
    ({"instances": "rows"}, "expected a list"),
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
    assert v2({"inputs": [tensor()]}).inputs[0].tolist() == [[1, 2, 3], [4, 5, 6]]
    nested = v2({"inputs": [tensor(data=[[1, 2, 3], [4, 5, 6]])]})
    raw = np.arange(1, 7, dtype="<f4").tobytes()
    binary = v2({"id": "r1", "inputs": [binary_tensor(24)]}, raw, header=True)
    assert nested.inputs[0].tolist() == binary.inputs[0].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert binary.id == "r1"


def test_v2_binary_output_is_chosen_per_output_or_for_the_whole_request():
    assert v2({"inputs": [tensor()], "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}).outputs \
        == [(0, True)]
    assert v2({"inputs": [tensor()], "parameters": {"binary_data_output": True}}).outputs == [(0, True)]
    assert v2({"inputs": [tensor()]}).outputs == [(0, False)]


@pytest.mark.parametrize("request_, words", [
    ({"inputs": [tensor(name="x")]}, "unknown input 'x'"),
    ({"inputs": [tensor(datatype="INT64")]}, "wrong dtype 'INT64', input 'features' takes float32 [n, 3] (datatype FP32)"),
    ({"inputs": [tensor(datatype="FP32", data=["a"] * 6)]}, "wrong dtype"),
    ({"inputs": [tensor(shape=[6])]}, "wrong rank"),
    ({"inputs": [tensor(shape=[3, 2])]}, "wrong shape"),
    ({"inputs": [tensor(shape=[2, 3], data=[1, 2, 3])]}, "do not fill"),
    ({"inputs": [tensor(shape=[0, 3], data=[])]}, "empty batch"),
    ({"inputs": [tensor(shape=[5, 3], data=[1] * 15)]}, "too many instances"),
    ({"inputs": [tensor(shape=[5, 3], data=[1])]}, "inputs[0]: too many instances, 5 > limit 4"),   # before decoding
    ({"inputs": [tensor(), tensor()]}, "given twice"),
    ({"inputs": []}, "expected a list of tensors"),
    ({"inputs": [tensor()], "outputs": [{"name": "probabilities"}]}, "unknown output"),
    ({"inputs": [tensor(shape=[-1, 3])]}, "non-negative integers"),
])
def test_bad_v2_requests_are_refused_with_the_reason(request_, words):
    with pytest.raises(HttpError) as e:
        v2(request_)
    assert e.value.status == 400 and words in e.value.message


@pytest.mark.parametrize("rows", [[[True, 2.5, 3]], [[1, 2, 3], [4, False, 6]], [[0.5, 2, 3], [1, 2, True]]])
def test_true_or_false_among_numbers_is_refused_not_read_as_one_or_zero(rows):
    """numpy turns [[true, 2.5]] into [[1.0, 2.5]]: the server answered a prediction for input it never got."""
    for parse, where in ((lambda: v1({"instances": rows}), "instances"),
                         (lambda: v1({"inputs": {"features": rows}}), "inputs.features"),
                         (lambda: v2({"inputs": [tensor(shape=[len(rows), 3], data=rows)]}), "inputs[0].data"),
                         (lambda: v2({"inputs": [tensor(shape=[len(rows), 3], data=sum(rows, []))]}),
                          "inputs[0].data")):
        with pytest.raises(HttpError) as e:
            parse()
        assert e.value.status == 400
        assert e.value.message == (f"{where}: wrong dtype, numbers expected (found true/false); "
                                   "input 'features' takes float32 [n, 3]")


def test_true_or_false_among_integers_is_refused_and_zeros_and_ones_still_pass():
    image = [[[[1], [0]], [[True], [0]]]]
    with pytest.raises(HttpError) as e:
        v1({"inputs": {"image": image, "age": [[1]]}}, signature=TWO)
    assert e.value.status == 400 and "inputs.image: wrong dtype, numbers expected (found true/false)" in e.value.message
    rows, _ = v1({"instances": [[0, 1, 0.0], [1.0, 0, 1]]})
    assert rows.tolist() == [[0, 1, 0], [1, 0, 1]]


def test_v2_binary_size_must_match_the_shape():
    with pytest.raises(HttpError) as e:
        v2({"inputs": [binary_tensor(20)]}, b"\0" * 20, header=True)
    assert "do not match shape [2, 3] of float32 (24 bytes)" in e.value.message


def test_v2_nan_in_binary_data_is_refused():
    with pytest.raises(HttpError) as e:
        v2({"inputs": [binary_tensor(24)]}, np.array([1, 2, np.nan, 4, 5, 6], dtype="<f4").tobytes(), header=True)
    assert "NaN" in e.value.message


def test_v2_binary_response_carries_its_header_length():
    out = [np.array([[0.25, 0.75]], dtype=np.float32)]
    body, length = protocol_v2.encode_infer("m", "v1", "r1", TABLE, out, [(0, True)], "p-1")
    header = json.loads(body[:length])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 8
    assert np.frombuffer(body[length:], dtype="<f4").tolist() == [0.25, 0.75]
    body, length = protocol_v2.encode_infer("m", "v1", "r1", TABLE, out, [(0, False)], "p-1")
    assert length is None and json.loads(body)["outputs"][0]["data"] == [0.25, 0.75]


# --- any signature: N-d, several inputs and outputs, every datatype ----------------------------------

TWO = Signature(inputs=(TensorSpec("image", "uint8", (-1, 2, 2, 1)), TensorSpec("age", "float32", (-1, 1))),
                outputs=(TensorSpec("probabilities", "float32", (-1, 3)), TensorSpec("score", "float32", (-1,))))
IMAGE = [[[1], [2]], [[3], [255]]]


def test_multi_input_rows_and_columns_give_the_same_arrays():
    rows, key = v1({"instances": [{"image": IMAGE, "age": [30]}, {"age": [40], "image": IMAGE}]}, TWO)
    assert key == "predictions" and rows[0].dtype == np.uint8 and rows[0].shape == (2, 2, 2, 1)
    assert rows[1].tolist() == [[30], [40]]
    columns, key = v1({"inputs": {"image": [IMAGE, IMAGE], "age": [[30], [40]]}}, TWO)
    assert key == "outputs" and all((a == b).all() for a, b in zip(rows, columns))


def test_multi_output_replies_follow_the_request_format():
    outputs = [np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32), np.array([1.5, 2.5], np.float32)]
    rows = protocol_v1.encode_predict("predictions", TWO, outputs)["predictions"]
    assert rows[1]["score"] == 2.5 and rows[0]["probabilities"].tolist() == outputs[0][0].tolist()
    columns = protocol_v1.encode_predict("outputs", TWO, outputs)["outputs"]
    assert set(columns) == {"probabilities", "score"}


@pytest.mark.parametrize("body, words", [
    ({"instances": [{"image": IMAGE}]}, "exactly the inputs ['image', 'age']"),
    ({"instances": [[1, 2]]}, "exactly the inputs"),
    ({"inputs": [[1]]}, "several inputs"),
    ({"inputs": {"image": [IMAGE]}}, "missing input 'age' takes float32 [n, 1]"),
    ({"inputs": {"image": [IMAGE, IMAGE], "age": [[1]]}}, "differ in batch size"),
    ({"inputs": {"image": [[[[256], [0]], [[0], [0]]]], "age": [[1]]}}, "outside uint8's range [0, 255]"),
    ({"inputs": {"image": [[[[0.5], [0]], [[0], [0]]]], "age": [[1]]}}, "integers expected"),
    ({"inputs": {"image": [[[0, 0], [0, 0]]], "age": [[1]]}}, "wrong rank, got shape [1, 2, 2]; "
                                                               "input 'image' takes uint8 [n, 2, 2, 1]"),
    ({"inputs": {"image": [[[[0]], [[0]], [[0]]]], "age": [[1]]}}, "wrong shape [1, 3, 1, 1]"),
])
def test_bad_multi_input_bodies_name_the_input_and_what_it_takes(body, words):
    with pytest.raises(HttpError) as e:
        v1(body, TWO)
    assert e.value.status == 400 and words in e.value.message


def test_v2_multi_input_mixes_json_and_binary_and_selects_outputs():
    image = np.array(IMAGE, dtype=np.uint8)[None]
    request = {"inputs": [{"name": "age", "datatype": "FP32", "shape": [1, 1], "data": [30]},
                          {"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 1],
                           "parameters": {"binary_data_size": 4}}],
               "outputs": [{"name": "score", "parameters": {"binary_data": True}}]}
    parsed = v2_request(request, image.tobytes(), header=True, signature=TWO)
    assert parsed.inputs[0].tolist() == image.tolist() and parsed.inputs[1].tolist() == [[30.0]]
    assert parsed.outputs == [(1, True)]
    outputs = [np.zeros((1, 3), np.float32), np.array([0.5], np.float32)]
    body, length = protocol_v2.encode_infer("m", "v1", "r", TWO, outputs, parsed.outputs, "p")
    head = json.loads(body[:length])
    assert [o["name"] for o in head["outputs"]] == ["score"] and np.frombuffer(body[length:], "<f4").tolist() == [0.5]


@pytest.mark.parametrize("dtype, datatype, data, raw", [
    ("float16", "FP16", [1.5, -2], np.array([1.5, -2], "<f2").tobytes()),
    ("float64", "FP64", [1.5, -2], np.array([1.5, -2], "<f8").tobytes()),
    ("int8", "INT8", [-128, 127], np.array([-128, 127], "i1").tobytes()),
    ("int16", "INT16", [-3, 300], np.array([-3, 300], "<i2").tobytes()),
    ("int32", "INT32", [-3, 70000], np.array([-3, 70000], "<i4").tobytes()),
    ("int64", "INT64", [-3, 2 ** 40], np.array([-3, 2 ** 40], "<i8").tobytes()),
    ("bool", "BOOL", [True, False], np.array([True, False]).tobytes()),
    ("string", "BYTES", ["hi", "été"], b"\x02\0\0\0hi\x05\0\0\0" + "été".encode()),
])
def test_every_datatype_decodes_the_same_from_json_and_binary(dtype, datatype, data, raw):
    sig = Signature(inputs=(TensorSpec("x", dtype, (-1, 2)),), outputs=(TensorSpec("y", "float32", (-1, 1)),))
    tensor_json = {"name": "x", "datatype": datatype, "shape": [1, 2], "data": data}
    from_json = protocol_v2.parse_infer(json.dumps({"inputs": [tensor_json]}).encode(), None, signature=sig,
                                        max_rows=4).inputs[0]
    head = json.dumps({"inputs": [{"name": "x", "datatype": datatype, "shape": [1, 2],
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    from_raw = protocol_v2.parse_infer(head + raw, str(len(head)), signature=sig, max_rows=4).inputs[0]
    assert from_json.tolist() == from_raw.tolist() and from_json.shape == (1, 2)
    if dtype == "string":
        assert from_json.tolist() == [[b"hi", "été".encode()]]
    else:
        assert from_json.dtype == np.dtype(dtype) and from_json.tolist() == [data]
    wrong = "FP32" if datatype != "FP32" else "INT8"
    with pytest.raises(HttpError, match=f"takes {dtype} \\[n, 2\\] \\(datatype {datatype}\\)"):
        protocol_v2.parse_infer(json.dumps({"inputs": [{**tensor_json, "datatype": wrong}]}).encode(), None,
                                signature=sig, max_rows=4)
