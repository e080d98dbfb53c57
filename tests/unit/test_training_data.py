"""Parsing, validating and splitting tabular data (NumPy only)."""
import numpy as np
import pytest

from modelops_training import data
from modelops_training.errors import BadData


def table(text: str, target="price", features=None):
    return data.parse_csv(text.encode(), "h.csv", target, features)


def test_features_default_to_every_column_but_the_target_in_file_order():
    t = table("rooms,price,size\n3,100,50\n4,120,60\n")
    assert t.feature_names == ["rooms", "size"]
    np.testing.assert_array_equal(t.features, [[3, 50], [4, 60]])


def test_the_target_defaults_to_the_last_column_and_features_can_be_chosen():
    assert table("a,b,c\n1,2,3\n", target=None).feature_names == ["a", "b"]
    assert table("a,b,price\n1,2,3\n", features=("b",)).feature_names == ["b"]


@pytest.mark.parametrize("text, features, message", [
    ("a,price\n1,2\n", ("z",), "data.features: column 'z' not in h.csv"),
    ("a,price\n1,2\n", ("price",), "the target column 'price' is also listed as a feature"),
    ("price\n1\n", None, "no feature columns besides the target"),
    ("a,price\n1,2\n3\n", None, "h.csv line 3 has 1 fields, the header has 2"),
    ("a,price\n,2\n", None, "column 'a' in h.csv line 2 is not a number: ''"),
    ("a,price\ninf,2\n", None, "column 'a' in h.csv line 2 is inf"),
    ("", None, "h.csv is empty"),
])
def test_bad_tables_name_the_problem(text, features, message):
    with pytest.raises(BadData, match=message.replace("(", r"\(")):
        table(text, features=features)


def test_split_is_deterministic_per_seed_and_covers_every_row():
    t = data.Table(features=np.arange(20, dtype=np.float32)[:, None], target=np.arange(20.0), feature_names=["x"],
                   source="t")
    a, b = data.prepare(t, "regression", 0.25, seed=3), data.prepare(t, "regression", 0.25, seed=3)
    assert len(a.x_val) == 5 and len(a.x_train) == 15
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert a.fingerprint == b.fingerprint != data.prepare(t, "regression", 0.25, seed=4).fingerprint
    assert sorted(np.concatenate([a.x_train, a.x_val])[:, 0]) == list(range(20))


def test_classification_labels_become_class_indices_in_sorted_label_order():
    t = table("x,kind\n1,cat\n2,dog\n3,cat\n4,emu\n5,dog\n", target="kind")
    prepared = data.prepare(t, "classification", 0.2, seed=0)
    assert prepared.classes == ["cat", "dog", "emu"]
    by_x = dict(zip(np.concatenate([prepared.x_train, prepared.x_val])[:, 0],
                    np.concatenate([prepared.y_train, prepared.y_val])))
    assert by_x == {1: 0, 2: 1, 3: 0, 4: 2, 5: 1}


def test_regression_needs_a_numeric_target():
    with pytest.raises(BadData, match="non-numeric"):
        data.prepare(table("x,price\n1,a\n2,b\n3,c\n"), "regression", 0.3, seed=0)


def test_linear_dataset_follows_its_documented_line():
    t = data.linear_table()
    slope, intercept = np.polyfit(t.features[:, 0], t.target, 1)
    assert slope == pytest.approx(data.LINEAR_SLOPE, rel=0.02)
    assert intercept == pytest.approx(data.LINEAR_INTERCEPT, rel=0.02)
