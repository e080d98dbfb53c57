"""Data that is not a CSV table: .npz archives of named N-d arrays and the bundled digits as images."""
import gzip
import io
import re
from importlib import resources

import numpy as np
import pytest

from modelops_training import data, features, formats
from modelops_training.errors import BadData


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def parse(raw: bytes, target=None, wanted=None):
    return formats.parse_npz(raw, "d.npz", target, wanted)


def test_one_n_d_array_is_the_single_input_and_several_are_named_inputs():
    images = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4, 1)
    one = parse(npz(x=images, y=np.arange(6)))
    assert one.features.dtype == np.uint8 and one.features.shape == (6, 4, 4, 1) and one.feature_names == []
    two = parse(npz(image=images, age=np.ones((6, 1), np.float32), label=np.arange(6)), target="label")
    assert sorted(two.features) == ["age", "image"] and features.count(two.features) == 6
    chosen = parse(npz(image=images, age=np.ones((6, 1), np.float32), y=np.arange(6)), wanted=("image",))
    assert chosen.features.shape == (6, 4, 4, 1)


def test_a_2d_float_array_is_a_table_with_named_columns():
    t = parse(npz(x=np.ones((5, 3)), y=np.arange(5)))
    assert t.features.dtype == np.float32 and t.feature_names == ["x_0", "x_1", "x_2"]


@pytest.mark.parametrize("arrays, target, wanted, message", [
    ({"x": np.ones((4, 2))}, None, None, "data.target: array 'y' not in d.npz (arrays: x)"),
    ({"x": np.ones((4, 2)), "y": np.ones(4)}, None, ("z",), "data.features: array 'z' not in d.npz"),
    ({"y": np.ones(4)}, None, None, "d.npz has no feature arrays besides the target 'y'"),
    ({"x": np.ones((4, 2)), "y": np.ones((4, 2))}, None, None, "array 'y' in d.npz has shape [4, 2]"),
    ({"x": np.ones((3, 2)), "y": np.ones(4)}, None, None, "array 'x' in d.npz has 3 examples, the target has 4"),
    ({"x": np.ones(4), "y": np.ones(4)}, None, None, "array 'x' in d.npz has shape [4]"),
    ({"x": np.array([["a"], ["b"]]), "y": np.ones(2)}, None, None, "array 'x' in d.npz has dtype <U1"),
    ({"x": np.array([[1.0], [np.nan]]), "y": np.ones(2)}, None, None, "array 'x' in d.npz example 1 holds nan"),
])
def test_bad_archives_name_the_file_and_the_array(arrays, target, wanted, message):
    with pytest.raises(BadData, match=re.escape(message)):
        parse(npz(**arrays), target, wanted)


def test_a_file_that_is_not_an_archive_or_holds_objects_is_refused():
    with pytest.raises(BadData, match=r"d.npz is not a NumPy .npz archive"):
        parse(b"not a zip")
    with pytest.raises(BadData, match=r"array 'x' in d.npz holds Python objects"):
        parse(npz(x=np.array([[{"a": 1}], [None]], dtype=object), y=np.ones(2)))


def test_digits_images_are_the_bundled_digits_as_uint8_pixels():
    images = formats.digits_images()
    raw = resources.files("modelops_training.datasets").joinpath("digits.csv.gz").read_bytes()
    rows = data.parse_csv(gzip.decompress(raw), "digits.csv", None, None)
    assert images.features.shape == (len(rows.features), 8, 8, 1) and images.features.dtype == np.uint8
    np.testing.assert_array_equal(images.features.reshape(len(rows.features), 64),
                                  np.rint(rows.features * 255 / 16).astype(np.uint8))
    assert images.features.max() == 255


def test_n_d_and_named_data_split_alike_and_fingerprint_their_shapes():
    images = np.arange(20 * 2 * 2, dtype=np.uint8).reshape(20, 2, 2, 1)
    single = data.prepare(data.Table(images, np.arange(20) % 2, [], "t"), "classification", 0.25, 7)
    named = data.prepare(data.Table({"image": images}, np.arange(20) % 2, [], "t"), "classification", 0.25, 7)
    assert single.train_rows == named.train_rows == 15 and single.val_rows == 5
    np.testing.assert_array_equal(single.x_val, named.x_val["image"])
    assert single.fingerprint != named.fingerprint
    reshaped = data.prepare(data.Table(images.reshape(20, 4, 1, 1), np.arange(20) % 2, [], "t"),
                            "classification", 0.25, 7)
    assert reshaped.fingerprint != single.fingerprint
