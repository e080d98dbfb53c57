"""Every kind of bad input ends the stage with one clear line, the contract's exit code, and no version."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from modelops_contracts import report
from training_fixtures import BASE, job_config, merge, write_config

from modelops_training.train import train

pytestmark = pytest.mark.component


def csv_file(tmp_path, text: str):
    path = tmp_path / "houses.csv"
    path.write_text(text)
    return str(path)


def assert_failed_cleanly(config, result, exit_code: int, *fragments: str) -> None:
    assert not result.succeeded
    assert result.exit_code == exit_code, result
    assert "\n" not in result.message
    for fragment in fragments:
        assert fragment in result.message
    parent = config.version_dir.parent
    leftovers = [p.name for p in parent.iterdir()] if parent.is_dir() else []
    assert leftovers == [], f"left behind: {leftovers}"


def regression(tmp_path, uri: str, **data):
    return job_config(tmp_path / "store", metric="mse", model={"template": "mlp-regressor"},
                      data={"uri": uri, "target": "price", **data}, training={"epochs": 1, "batchSize": 2})


def test_missing_dataset_file(tmp_path):
    config = regression(tmp_path, str(tmp_path / "nope.csv"))
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_DATA, "cannot read", "nope.csv")


def test_unreadable_dataset_path_is_a_directory(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    config = regression(tmp_path, f"file://{tmp_path / 'dir.csv'}")
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_DATA, "cannot read", "dir.csv")


def test_pvc_uri_resolves_under_the_mount_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELOPS_PVC_ROOT", str(tmp_path / "mnt"))
    config = regression(tmp_path, "pvc://datasets/house.csv")
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_DATA, str(tmp_path / "mnt/datasets/house.csv"))


def test_absent_target_column(tmp_path):
    config = regression(tmp_path, csv_file(tmp_path, "size,rooms,cost\n1,2,3\n"))
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_DATA,
                          "data.target: column 'price' not in houses.csv (columns: size, rooms, cost)")


def test_non_numeric_cell(tmp_path):
    rows = "".join(f"{i},{i % 3},{i * 10}\n" for i in range(20))
    config = regression(tmp_path, csv_file(tmp_path, "size,rooms,price\n" + rows + "big,2,30\n"))
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_DATA,
                          "column 'size' in houses.csv line 22 is not a number: 'big'")


def test_nan_cell(tmp_path):
    rows = "".join(f"{i},{i % 3},{i * 10}\n" for i in range(20))
    config = regression(tmp_path, csv_file(tmp_path, "size,rooms,price\n1,NaN,30\n" + rows))
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_DATA, "column 'rooms' in houses.csv line 2 is nan")


def test_too_few_rows_for_the_split(tmp_path):
    config = regression(tmp_path, csv_file(tmp_path, "size,price\n1,10\n2,20\n"))
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_DATA, "2 rows", "too few", "validationSplit")


def test_custom_module_without_build_model(tmp_path, monkeypatch):
    (tmp_path / "no_builder.py").write_text("def load_data(config):\n    return [[1.0]] * 10, [1.0] * 10, ['x']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", metric="mse", model={"template": "custom", "customModule": "no_builder"},
                        training={"epochs": 1, "batchSize": 2})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG, "no_builder has no build_model(config)")


def test_custom_build_model_with_an_unusable_signature(tmp_path, monkeypatch):
    (tmp_path / "odd_builder.py").write_text("def build_model():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", model={"template": "custom", "customModule": "odd_builder"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG,
                          "odd_builder.build_model must take (config) or (config, inputs)")


def test_custom_model_with_the_wrong_output_shape(tmp_path, monkeypatch):
    (tmp_path / "wrong_output.py").write_text(
        "import tf_keras as keras\n"
        "def build_model(config):\n"
        "    return keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(3, activation='softmax')])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", model={"template": "custom", "customModule": "wrong_output"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG,
                          "expects one output of shape [batch, 10], got [(None, 3)]")


def test_custom_model_whose_inputs_do_not_take_the_data(tmp_path, monkeypatch):
    (tmp_path / "wrong_input.py").write_text(
        "import tf_keras as keras\n"
        "def build_model(config):\n"
        "    image = keras.Input(shape=(8, 8, 1), name='image')\n"
        "    out = keras.layers.Dense(10, activation='softmax')(keras.layers.Flatten()(image))\n"
        "    return keras.Model(image, out)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", model={"template": "custom", "customModule": "wrong_input"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG,
                          "the data has inputs {'input': [-1, 64]}, the model takes {'image': [-1, 8, 8, 1]}")


def test_a_table_template_on_images_and_the_cnn_on_a_table_are_refused(tmp_path):
    config = job_config(tmp_path / "a", data={"uri": "builtin:digits-images"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG,
                          "mlp-classifier takes a table of numbers; the data holds uint8 [8, 8, 1] examples")
    config = job_config(tmp_path / "b", model={"template": "cnn-classifier"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG,
                          "cnn-classifier takes images [height, width, channels], the data's examples have shape [64]")


@pytest.mark.parametrize("params, message", [
    ({"filters": []}, "model.params.filters: expected a list of 1 to 4 filter counts, got []"),
    ({"filters": [16, 1024]}, "model.params.filters: expected ints in [1, 512], got [16, 1024]"),
    ({"kernelSize": 9}, "model.params.kernelSize: expected ints in [1, 7], got 9"),
    ({"dropout": 0.95}, "model.params.dropout: expected floats in [0.0, 0.9], got 0.95"),
    ({"hiddenUnits": [64]}, "model.params.hiddenUnits: not a cnn-classifier param"),
])
def test_cnn_params_out_of_bounds_are_refused_naming_the_param(tmp_path, params, message):
    config = job_config(tmp_path, model={"template": "cnn-classifier", "params": params},
                        data={"uri": "builtin:digits-images"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG, message)


@pytest.mark.parametrize("params, message", [
    ({"hiddenUnits": []}, "model.params.hiddenUnits: expected a non-empty list of positive integers"),
    ({"hiddenUnits": [64, "wide"]}, "model.params.hiddenUnits"),
    ({"dropout": 1.5}, "model.params.dropout: expected a number in [0, 1), got 1.5"),
])
def test_bad_template_parameters(tmp_path, params, message):
    config = job_config(tmp_path / "store", model={"params": params})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG, message)


def test_custom_module_that_does_not_import(tmp_path):
    config = job_config(tmp_path / "store", model={"template": "custom", "customModule": "no.such.module"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG, "cannot import 'no.such.module'")


def test_unknown_bundled_dataset(tmp_path):
    config = job_config(tmp_path / "store", data={"uri": "builtin:iris"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG, "unknown bundled dataset 'iris'")


def test_metric_that_does_not_fit_the_template(tmp_path):
    config = job_config(tmp_path / "store", metric="mse")
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG, "mse does not fit template mlp-classifier")


def test_unwritable_storage_path(tmp_path):
    (tmp_path / "a-file").write_text("")
    config = job_config(tmp_path / "a-file" / "store")
    result = train(config)
    assert result.exit_code == report.EXIT_STORAGE_ERROR
    assert result.message.startswith("storageRoot: cannot write") and "a-file" in result.message
    assert not config.version_dir.exists()


def run_cli(tmp_path, config_path, *args):
    return subprocess.run([sys.executable, "-c", "from modelops_training.cli import main_train; main_train()",
                           "--config", str(config_path), *args], capture_output=True, text=True, timeout=120)


def test_cli_unknown_template_exits_2_with_the_report_on_stdout_and_in_the_report_file(tmp_path):
    raw = merge(BASE, {"model": {"template": "transformer"}, "storageRoot": str(tmp_path / "store")})
    done = run_cli(tmp_path, write_config(tmp_path / "job.json", raw), "--report-path", str(tmp_path / "r.json"))
    assert done.returncode == report.EXIT_BAD_CONFIG
    printed = report.decode(done.stdout)
    assert printed.reason == "BadConfig"
    assert printed.message == "model.template: 'transformer' is not one of linear-regression, mlp-regressor, " \
                              "mlp-classifier, cnn-classifier, custom"
    assert report.decode((tmp_path / "r.json").read_text()) == printed
    assert not (tmp_path / "store").exists()


def test_cli_missing_config_file_exits_2(tmp_path):
    done = run_cli(tmp_path, tmp_path / "absent.json", "--report-path", str(tmp_path / "r.json"))
    assert done.returncode == report.EXIT_BAD_CONFIG
    assert "absent.json" in report.decode(done.stdout).message


def test_cli_bad_data_exits_3_and_tolerates_an_unwritable_report_path(tmp_path):
    config = regression(tmp_path, str(tmp_path / "nope.csv"))
    done = run_cli(tmp_path, write_config(tmp_path / "job.json", config), "--report-path",
                   str(tmp_path / "no-such-dir" / "report"))
    assert done.returncode == report.EXIT_BAD_DATA, done.stderr[-2000:]
    assert json.loads(done.stdout)["reason"] == "BadData"


def test_fewer_training_rows_than_the_batch_size(tmp_path):
    rows = "".join(f"{i},{i * 10}\n" for i in range(10))
    config = job_config(tmp_path / "store", metric="mse", model={"template": "linear-regression"},
                        data={"uri": csv_file(tmp_path, "size,price\n" + rows), "target": "price"},
                        training={"batchSize": 32})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_DATA,
                          "8 training rows are fewer than training.batchSize 32")


def test_a_loss_that_becomes_nan_fails_training(tmp_path, monkeypatch):
    (tmp_path / "nan_model.py").write_text(
        "import tf_keras as keras\n"
        "import tensorflow as tf\n"
        "def build_model(config, inputs):\n"
        "    return keras.Sequential([keras.Input(shape=(inputs.num_features,)),\n"
        "                             keras.layers.Lambda(lambda x: tf.math.log(x * 0.0 - 1.0)),\n"
        "                             keras.layers.Dense(1)])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", metric="mse", model={"template": "custom", "customModule": "nan_model"},
                        data={"uri": "builtin:linear"}, training={"epochs": 5})
    result = train(config)
    assert_failed_cleanly(config, result, report.EXIT_TRAINING_FAILED, "the loss became nan")
