"""The three contracts, tested from both sides: what one side writes, the other reads back unchanged."""
import json

import pytest

from modelops_contracts import jobconfig, manifest, report, signature


def sample_config(**overrides):
    d = {"apiVersion": "modelops.io/v1alpha1", "kind": "JobConfig", "stage": "train", "metric": "mse",
         "model": {"namespace": "ml", "name": "house", "version": "v3", "template": "mlp-regressor",
                   "params": {"hiddenUnits": [64, 32]}},
         "data": {"uri": "builtin:diabetes", "target": "target", "validationSplit": 0.25, "shuffleSeed": 7},
         "training": {"strategy": "MultiWorkerMirrored", "workers": 2, "epochs": 5, "batchSize": 64,
                      "learningRate": 0.01, "seed": 11, "attempt": 2},
         "compression": {"method": "int8", "pruningSparsity": 0.5},
         "storageRoot": "/mnt/models", "reportPath": "/tmp/report"}
    d.update(overrides)
    return d


def test_job_config_round_trips_through_its_wire_form():
    cfg = jobconfig.JobConfig.from_dict(sample_config())
    assert jobconfig.JobConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.version_dir.as_posix() == "/mnt/models/ml/house/v3"
    assert cfg.training.workers == 2 and cfg.compression.method == "int8"


@pytest.mark.parametrize("change, field", [
    ({"stage": "deploy"}, "stage"),
    ({"metric": "f1"}, "metric"),
    ({"kind": "Pod"}, "apiVersion/kind"),
    ({"training": {"strategy": "OneDevice", "workers": 3}}, "training.workers"),
    ({"training": {"epochs": 0}}, "training.epochs"),
    ({"training": {"batchSize": "big"}}, "training.batchSize"),
    ({"data": {"validationSplit": 0.5}}, "data.uri"),
    ({"data": {"uri": "x", "validationSplit": 0.95}}, "data.validationSplit"),
    ({"model": {"namespace": "a", "name": "b", "version": "v1", "template": "custom"}}, "model.customModule"),
    ({"compression": {"method": "int4"}}, "compression.method"),
])
def test_job_config_errors_name_the_field(change, field):
    with pytest.raises(jobconfig.ConfigError, match=field.replace(".", r"\.")):
        jobconfig.JobConfig.from_dict(sample_config(**change))


def test_report_round_trips_and_fits_a_termination_message():
    r = report.StageReport(stage="train", succeeded=True, version="v1", attempt=2, metric="mse",
                           metrics={"mse": 0.03, "mae": 0.1}, artifact_path="/m/ns/x/v1")
    back = report.decode(report.encode(r))
    assert back == r and back.metric_value == 0.03 and back.exit_code == 0


def test_a_report_from_before_the_config_was_read_round_trips_without_a_version():
    """BadConfig, or a SIGTERM during start-up: no version is known, and none must be invented."""
    r = report.StageReport(stage="train", succeeded=False, version="", reason="Terminated", message="stopped")
    assert report.decode(report.encode(r)) == r


def test_an_oversized_message_is_shortened_but_the_numbers_survive():
    r = report.StageReport(stage="train", succeeded=False, version="v1", reason="BadData",
                           metrics={"mse": 1.5}, message="x" * 10_000)
    text = report.encode(r)
    assert len(text.encode()) <= report.MAX_BYTES
    back = report.decode(text)
    assert back.metrics == {"mse": 1.5} and back.reason == "BadData" and back.exit_code == report.EXIT_BAD_DATA


def test_garbage_is_not_a_report():
    for text in ["", "Error: OOMKilled", '{"kind": "Other"}', '{"kind": "StageReport", "status": "Maybe"}']:
        with pytest.raises(report.ReportError):
            report.decode(text)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", '"0.9"'])
def test_a_report_with_a_non_finite_or_non_numeric_metric_is_refused_naming_it(bad):
    text = report.encode(report.StageReport(stage="train", succeeded=True, version="v1", metric="auc",
                                            metrics={"accuracy": 0.9, "auc": 0.123456}))
    with pytest.raises(report.ReportError, match=r"metrics\.auc"):
        report.decode(text.replace("0.123456", bad))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_number_is_never_encoded(value):
    with pytest.raises(report.ReportError, match=r"metrics\.auc"):
        report.encode(report.StageReport(stage="train", succeeded=True, version="v1", metric="auc",
                                         metrics={"auc": value}))
    with pytest.raises(report.ReportError, match=r"compression\.ratio"):
        report.encode(report.StageReport(stage="compress", succeeded=True, version="v1", compression={"ratio": value}))


def test_manifest_verifies_the_files_it_lists(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"\x00" * 100)
    (tmp_path / "saved_model" / "variables").mkdir(parents=True)
    (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    (tmp_path / "saved_model" / "variables" / "v.data").write_bytes(b"data")
    m = manifest.Manifest(namespace="ml", name="x", version="v1", task="regression", feature_names=["a", "b"],
                          servables={"tflite": "model.tflite", "savedModel": "saved_model"})
    m.add_files(tmp_path, ["model.tflite", "saved_model"])
    m.write(tmp_path)
    assert set(manifest.verify(tmp_path).files) == {"model.tflite", "saved_model/saved_model.pb",
                                                    "saved_model/variables/v.data"}
    (tmp_path / "model.tflite").write_bytes(b"\x01" * 100)
    with pytest.raises(manifest.ManifestError, match="model.tflite: sha256"):
        manifest.verify(tmp_path)
    (tmp_path / "model.tflite").unlink()
    with pytest.raises(manifest.ManifestError, match="model.tflite: listed in the manifest but missing"):
        manifest.verify(tmp_path)


def test_a_version_without_manifest_is_refused(tmp_path):
    with pytest.raises(manifest.ManifestError, match="no manifest"):
        manifest.verify(tmp_path)


def test_atomic_writes_are_readable_by_other_users(tmp_path):
    import os
    old = os.umask(0o022)
    try:
        manifest.atomic_write_text(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644


def two_input_signature():
    return signature.Signature(
        inputs=(signature.TensorSpec("image", "uint8", (-1, 8, 8, 1)), signature.TensorSpec("age", "float32", (-1, 1))),
        outputs=(signature.TensorSpec("probabilities", "float32", (-1, 10)),))


def test_the_signature_round_trips_through_the_manifest():
    m = manifest.Manifest(namespace="ml", name="x", version="v1", task="classification", feature_names=[],
                          classes=list(range(10)), signature=two_input_signature())
    back = manifest.Manifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back.signature == two_input_signature() == back.effective_signature
    assert back.to_dict()["signature"]["inputs"][0] == {"name": "image", "dtype": "uint8", "shape": [-1, 8, 8, 1]}
    assert not back.signature.is_tabular and back.signature.input("age").item_shape == (1,)


def test_a_manifest_from_before_the_signature_reads_as_one_float32_row_input():
    old = manifest.Manifest(namespace="ml", name="x", version="v1", task="classification", feature_names=["a", "b"],
                            classes=["cat", "dog", "eel"]).to_dict()
    assert "signature" not in old
    back = manifest.Manifest.from_dict(old)
    assert back.signature is None
    assert back.effective_signature == signature.tabular(2, 3) and back.effective_signature.is_tabular
    regression = manifest.Manifest.from_dict({**old, "task": "regression", "classes": []})
    assert regression.effective_signature.outputs[0].shape == (-1, 1)


@pytest.mark.parametrize("change, field", [
    ({"inputs": []}, "signature.inputs"),
    ({"inputs": [{"name": "", "dtype": "float32", "shape": [-1, 2]}]}, r"signature.inputs\[0\].name"),
    ({"inputs": [{"name": "a", "dtype": "complex64", "shape": [-1, 2]}]}, r"signature.inputs\[0\].dtype"),
    ({"inputs": [{"name": "a", "dtype": "float32", "shape": [4, 2]}]}, "batch and must be -1"),
    ({"inputs": [{"name": "a", "dtype": "float32", "shape": [-1, 0]}]}, r"signature.inputs\[0\].shape"),
    ({"outputs": [{"name": "o", "dtype": "float32", "shape": [-1]}] * 2}, "names must be unique"),
])
def test_a_malformed_signature_is_refused_naming_the_field(change, field):
    d = {**two_input_signature().to_dict(), **change}
    m = manifest.Manifest(namespace="ml", name="x", version="v1", task="regression", feature_names=[]).to_dict()
    with pytest.raises(manifest.ManifestError, match=field):
        manifest.Manifest.from_dict({**m, "signature": d})
