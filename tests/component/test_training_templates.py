"""Each model template trains on bundled data to a sane metric and publishes a complete version."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from modelops_contracts import manifest as mf
from training_fixtures import files_under, job_config

from modelops_training import data, export
from modelops_training.tf_runtime import tf
from modelops_training.train import train

pytestmark = pytest.mark.component


def test_linear_regression_recovers_intercept_and_slope(tmp_path):
    config = job_config(tmp_path, metric="mse", model={"name": "line", "template": "linear-regression"},
                        data={"uri": "builtin:linear"}, training={"epochs": 8, "learningRate": 0.05})
    result = train(config)
    assert result.succeeded, result.message
    model = export.load(config.version_dir)
    at_zero, at_one = model.predict(np.array([[0.0], [1.0]], dtype=np.float32), verbose=0)[:, 0]
    assert at_zero == pytest.approx(data.LINEAR_INTERCEPT, rel=0.05)
    assert at_one - at_zero == pytest.approx(data.LINEAR_SLOPE, rel=0.05)
    assert result.metrics["r2"] > 0.9


def test_mlp_classifier_reaches_90_percent_on_digits_and_publishes_every_artifact(tmp_path):
    config = job_config(tmp_path)
    result = train(config)
    assert result.succeeded, result.message
    assert result.metrics["accuracy"] >= 0.9
    assert set(result.metrics) == {"accuracy", "auc", "logloss"}
    assert result.artifact_path == str(config.version_dir)

    manifest = mf.verify(config.version_dir)
    assert manifest.task == "classification"
    assert manifest.classes == list(range(10))
    assert manifest.feature_names[:2] == ["pixel_0_0", "pixel_0_1"] and manifest.num_features == 64
    assert manifest.servables == {"savedModel": "saved_model", "keras": "model.keras"}
    assert manifest.signature.to_dict() == {"inputs": [{"name": "features", "dtype": "float32", "shape": [-1, 64]}],
                                            "outputs": [{"name": "output", "dtype": "float32", "shape": [-1, 10]}]}
    assert manifest.extra["parameters"] >= 100_000
    on_disk = files_under(config.version_dir) - {mf.FILENAME}
    assert set(manifest.files) == on_disk
    assert any(f.startswith("logs/") for f in on_disk)

    history = json.loads((config.version_dir / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2, 3]
    # The validation loss and metric per epoch beside the training ones (the curve and TensorBoard show both).
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history["epochs"][0])
    assert all(0 < row["val_accuracy"] <= 1 for row in history["epochs"])
    assert any(f.startswith("logs/validation/") for f in on_disk) and any(f.startswith("logs/train/") for f in on_disk)
    assert history["epochs"][-1]["loss"] < history["epochs"][0]["loss"]
    stored = json.loads((config.version_dir / "metrics.json").read_text())
    assert stored["heldOut"] == result.metrics


def test_saved_model_takes_raw_features_and_matches_the_keras_model(tmp_path):
    config = job_config(tmp_path, training={"epochs": 1})
    assert train(config).succeeded
    prepared = data.load(config)
    raw = prepared.x_val[:5]
    served = tf.saved_model.load(str(config.version_dir / "saved_model")).signatures["serving_default"]
    probabilities = served(features=tf.constant(raw))["output"].numpy()
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities, export.load(config.version_dir).predict(raw, verbose=0), rtol=1e-4,
                               atol=1e-6)


def test_mlp_regressor_beats_the_mean_on_diabetes(tmp_path):
    config = job_config(tmp_path, metric="mse", model={"name": "diabetes", "template": "mlp-regressor"},
                        data={"uri": "builtin:diabetes", "target": "progression"},
                        training={"epochs": 5, "learningRate": 0.001})
    result = train(config)
    assert result.succeeded, result.message
    assert result.metrics["r2"] > 0.2
    assert mf.verify(config.version_dir).task == "regression"


def test_mlp_classifier_on_breast_cancer_is_binary_with_two_probability_outputs(tmp_path):
    config = job_config(tmp_path, metric="auc", model={"name": "cancer", "params": {"hiddenUnits": [32]}},
                        data={"uri": "builtin:breast_cancer"}, training={"epochs": 5, "learningRate": 0.01})
    result = train(config)
    assert result.succeeded, result.message
    assert result.metrics["auc"] > 0.95
    assert mf.verify(config.version_dir).classes == [0, 1]


def test_custom_build_model_may_take_the_config_alone(tmp_path, monkeypatch):
    (tmp_path / "fixed_model.py").write_text(textwrap.dedent("""
        import tf_keras as keras

        def build_model(config):
            return keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", metric="mse", model={"template": "custom", "customModule": "fixed_model"},
                        data={"uri": "builtin:linear"}, training={"epochs": 2, "learningRate": 0.1})
    result = train(config)
    assert result.succeeded, result.message
    assert result.metrics["r2"] > 0.5


def test_custom_module_brings_its_own_architecture_and_data(tmp_path, monkeypatch):
    (tmp_path / "my_model.py").write_text(textwrap.dedent("""
        import numpy as np
        import tf_keras as keras

        def load_data(config):
            rng = np.random.default_rng(1)
            x = rng.normal(size=(600, 3)).astype("float32")
            y = (x[:, 0] + 2 * x[:, 1] > 0).astype("int64")
            return x, y, ["a", "b", "c"]

        def build_model(config, inputs):
            return keras.Sequential([keras.Input(shape=(inputs.num_features,)), inputs.normalization(),
                                     keras.layers.Dense(config.model.params["width"], activation="tanh"),
                                     *inputs.output_layers()])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", model={"template": "custom", "customModule": "my_model",
                                                   "params": {"width": 16}},
                        data={"uri": "unused:"}, training={"epochs": 10, "learningRate": 0.01})
    result = train(config)
    assert result.succeeded, result.message
    assert result.metrics["accuracy"] >= 0.9
    assert mf.verify(config.version_dir).feature_names == ["a", "b", "c"]


def test_mirrored_strategy_uses_the_same_code_path(tmp_path):
    config = job_config(tmp_path, training={"strategy": "Mirrored", "epochs": 2})
    result = train(config)
    assert result.succeeded, result.message
    assert mf.verify(config.version_dir).extra["training"]["strategy"] == "Mirrored"


def test_a_failure_while_writing_leaves_no_version_and_no_staging(tmp_path, monkeypatch):
    def save_half_then_fail(model, root):
        (root / "model.keras").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "save", save_half_then_fail)
    config = job_config(tmp_path, training={"epochs": 1})
    result = train(config)
    assert result.reason == "StorageError" and "No space left on device" in result.message
    assert list(config.version_dir.parent.iterdir()) == []


def test_training_the_same_version_again_replaces_it_whole(tmp_path):
    config = job_config(tmp_path, training={"epochs": 1})
    assert train(config).succeeded
    first = mf.verify(config.version_dir).files["model.keras"]["sha256"]
    again = job_config(tmp_path, training={"epochs": 2})
    assert train(again).succeeded
    assert mf.verify(config.version_dir).files["model.keras"]["sha256"] != first
    assert sorted(p.name for p in config.version_dir.parent.iterdir()) == ["feedback", "v1"]   # feedback: for serving
