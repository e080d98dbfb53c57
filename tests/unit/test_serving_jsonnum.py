"""Integer batches decoded without NumPy's per-element discovery (jsonnum.py) equal what the general JSON
path decodes, or step aside (None) so that path decodes and refuses as it always did."""
import json

import numpy as np
import orjson
import pytest
from modelops_contracts.signature import Signature, TensorSpec

from modelops_serving import jsonnum, protocol_v1, protocol_v2
from modelops_serving.errors import HttpError

IMAGE = Signature(inputs=(TensorSpec("image", "uint8", (-1, 2, 3, 1)),), outputs=(TensorSpec("output", "float32", (-1, 2)),))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", ["uint8", "int64"])
def test_random_integer_batches_decode_to_what_json_says(seed, dtype):
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 5, size=rng.integers(1, 4)))
    high = 256 if dtype == "uint8" else 2 ** 62
    values = rng.integers(0 if dtype == "uint8" else -high, high, size=(3, *shape))
    decoded = jsonnum.integers(orjson.loads(json.dumps(values.tolist())), shape, dtype)
    assert decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, values)
    flat = jsonnum.integers(values.ravel().tolist(), shape, dtype, flat=True)
    np.testing.assert_array_equal(flat, values)


@pytest.mark.parametrize("value", [
    [[1, 2], [3]], [[1, 2], [3, 4, 5]], [1, 2, 3, 4], [[1, 2], 3], [[1.0, 2], [3, 4]], [[True, 2], [3, 4]],
    [[None, 2], [3, 4]], [["1", 2], [3, 4]], ["ab", "cd"], [{"a": 1, "b": 2}, [3, 4]], [[[1], 2], [3, 4]],
    [[256, 2], [3, 4]], [[-1, 2], [3, 4]], [], "12",
])
def test_anything_but_a_regular_batch_of_plain_ints_steps_aside(value):
    assert jsonnum.integers(value, (2,), "uint8") is None


def test_free_dimensions_float_inputs_and_int64_overflow_step_aside():
    assert jsonnum.integers([[1, 2]], (-1,), "uint8") is None
    assert jsonnum.integers([[1, 2]], (2,), "float32") is None
    assert jsonnum.integers([[2 ** 63, 2]], (2,), "int64") is None
    assert jsonnum.integers([1, 2, 3], (2,), "uint8", flat=True) is None


def images(n: int) -> np.ndarray:
    return np.arange(n * 6).reshape(n, 2, 3, 1) % 256


def v2_body(data, shape) -> bytes:
    return json.dumps({"id": "r1", "inputs": [{"name": "image", "datatype": "UINT8", "shape": shape, "data": data}],
                       "outputs": [{"name": "output"}]}).encode()


@pytest.mark.parametrize("nested", [False, True])
def test_v2_integer_data_decodes_as_the_general_path_does(nested, monkeypatch):
    batch = images(3)
    body = v2_body(batch.tolist() if nested else batch.ravel().tolist(), list(batch.shape))
    fast = protocol_v2.parse_infer(body, None, signature=IMAGE, max_rows=10)
    assert fast.id == "r1" and fast.outputs == [(0, False)]
    assert fast.inputs[0].dtype == np.uint8
    np.testing.assert_array_equal(fast.inputs[0], batch)
    monkeypatch.setattr(jsonnum, "integers", lambda *a, **k: None)   # the general path alone
    np.testing.assert_array_equal(protocol_v2.parse_infer(body, None, signature=IMAGE, max_rows=10).inputs[0], batch)


@pytest.mark.parametrize("body, words", [
    (v2_body([300] + [0] * 5, [1, 2, 3, 1]), "outside uint8's range"),
    (v2_body([0] * 6, [1, 3, 2, 1]), "wrong shape [1, 3, 2, 1]"),
    (v2_body([0] * 12, [1, 2, 3, 1]), "12 values do not fill shape [1, 2, 3, 1]"),
    (v2_body([1.5] + [0] * 5, [1, 2, 3, 1]), "integers expected"),
])
def test_v2_integer_bodies_are_refused_as_the_general_path_refuses(body, words):
    with pytest.raises(HttpError) as refused:
        protocol_v2.parse_infer(body, None, signature=IMAGE, max_rows=10)
    assert refused.value.status == 400 and words in refused.value.message, refused.value.message


def test_v1_integer_rows_decode_fast_and_refuse_as_before():
    def parse(instances):
        return protocol_v1.parse_predict({"instances": instances}, signature=IMAGE, max_rows=10, feature_names=[])
    inputs, key = parse(images(2).tolist())
    assert key == "predictions" and inputs[0].dtype == np.uint8
    np.testing.assert_array_equal(inputs[0], images(2))
    with pytest.raises(HttpError, match="outside uint8's range"):
        parse((images(2) + 300).tolist())
    with pytest.raises(HttpError, match="too many instances"):
        parse(images(11).tolist())
    with pytest.raises(HttpError, match="wrong shape"):
        parse(np.zeros((2, 3, 2, 1), int).tolist())


def test_a_text_body_over_the_instance_limit_is_refused_before_any_number_is_decoded(monkeypatch):
    decoded = []
    monkeypatch.setattr(jsonnum.orjson, "loads", lambda *a: decoded.append(a) or [])
    body = json.dumps({"instances": images(11).tolist()}).encode()
    with pytest.raises(HttpError, match="instances: too many instances, 11 > limit 10"):
        protocol_v1.rows_from_text(body, signature=IMAGE, max_rows=10)
    assert decoded == []


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_instances_text_decodes_what_json_says(separators):
    batch = images(3)
    body = json.dumps({"instances": batch.tolist()}, separators=separators).encode()
    decoded = jsonnum.instances_text(body, (2, 3, 1), "uint8")
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, batch)
    rows = protocol_v1.rows_from_text(body, signature=IMAGE, max_rows=10)
    np.testing.assert_array_equal(rows[0], batch)
    signed = np.array([[-5, 0, 12], [7, -1234567, 3]])
    np.testing.assert_array_equal(jsonnum.instances_text(json.dumps({"instances": signed.tolist()}).encode(), (3,),
                                                         "int64"), signed)


@pytest.mark.parametrize("instances", [
    b"[[1,2],[3]]", b"[[1,2],[3,4,5]]", b"[1,2,3,4]", b"[[1,2],[3,4],]", b"[[1,2],,[3,4]]", b"[[1,2][3,4]]",
    b"[[01,2],[3,4]]", b"[[-01,2],[3,4]]", b"[[+1,2],[3,4]]", b"[[1.0,2],[3,4]]", b"[[1e2,2],[3,4]]",
    b"[[true,2],[3,4]]", b"[[null,2],[3,4]]", b'[["1",2],[3,4]]', b"[[1 2],[3,4]]", b"[[1\n-2],[3,4]]",
    b"[[1-2,2],[3,4]]", b"[[--1,2],[3,4]]", b"[[-,2],[3,4]]", b"[[1,2],[3,4]", b"[[1,2],[3,4]]]",
    b"[[1,2],[3,256]]", b"[]", b"[[1,2 ],[3,4]]", b"[\n [\n  1,\n  2\n ]\n]",
])
def test_instances_text_steps_aside_for_anything_but_a_regular_batch_of_json_integers(instances):
    assert jsonnum.instances_text(b'{"instances": ' + instances + b"}", (2,), "uint8") is None


def test_instances_text_takes_only_a_body_of_instances_alone():
    assert jsonnum.instances_text(b'{"instances": [[1, 2]], "signature_name": "x"}', (2,), "uint8") is None
    assert jsonnum.instances_text(b'{"inputs": [[1, 2]]}', (2,), "uint8") is None
    assert jsonnum.instances_text(b'{"instances": [[1, 2]]}', (2,), "float32") is None
    assert jsonnum.instances_text(b' {"instances" : [[1, 2]] } ', (2,), "uint8").tolist() == [[1, 2]]
