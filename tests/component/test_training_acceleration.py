"""The seed's acceleration switches on CPU: mixed precision and XLA run, are reported, and export float32;
GPUs that were requested but are not there fail the stage instead of training on the CPU unnoticed."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from modelops_contracts import report
from modelops_contracts import manifest as mf
from test_training_bad_input import assert_failed_cleanly
from training_fixtures import job_config

from modelops_training.tf_runtime import keras, tf
from modelops_training.train import train

pytestmark = pytest.mark.component


def test_mixed_precision_and_xla_train_report_and_export_float32(tmp_path):
    # As in a pod: a fresh process, whose thread pools are sized before TensorFlow starts.
    config = job_config(tmp_path / "store", training={"epochs": 2, "batchSize": 64, "precision": "mixed_float16",
                                                      "jitCompile": True})
    (tmp_path / "job.json").write_text(config.to_json())
    proc = subprocess.run([sys.executable, "-c", "from modelops_training.cli import main_train; main_train()",
                           "--config", str(tmp_path / "job.json")],
                          env={**os.environ, "MODELOPS_CPU_LIMIT": "1.5"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = report.decode(proc.stdout)
    assert "2 intra-op threads; precision mixed_float16; XLA on" in proc.stderr
    assert result.metrics["accuracy"] >= 0.8
    assert result.training == {"precision": "mixed_float16", "jitCompile": True, "intraOpThreads": 2,
                               "gpusVisible": 0, "devices": ["CPU:0"]}
    assert report.decode(report.encode(result)).training == result.training      # it travels in the report
    manifest = mf.verify(config.version_dir)
    assert manifest.extra["training"]["precision"] == "mixed_float16"
    exported = keras.models.load_model(config.version_dir / "model.keras")
    assert exported.outputs[0].dtype == tf.float32
    assert {layer.dtype_policy.name for layer in exported.layers} == {"float32"}
    assert keras.mixed_precision.global_policy().name == "float32"          # nothing left behind


def test_the_default_is_float32_without_xla(tmp_path):
    config = job_config(tmp_path / "store", training={"epochs": 1, "batchSize": 64})
    result = train(config)
    assert result.succeeded and result.training["precision"] == "float32" and not result.training["jitCompile"]


def test_gpus_requested_but_none_visible_fail_clearly(tmp_path):
    config = job_config(tmp_path / "store", training={"gpusPerWorker": 1})
    assert_failed_cleanly(config, train(config), report.EXIT_GPU_UNAVAILABLE,
                          "training.strategy.gpusPerWorker is 1 but TensorFlow sees no GPU",
                          "modelops-training-gpu")


def test_a_custom_model_with_a_float16_output_is_refused_under_mixed_precision(tmp_path, monkeypatch):
    (tmp_path / "half_out.py").write_text(
        "import tf_keras as keras\n"
        "def build_model(config):\n"
        "    return keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(10, activation='softmax')])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = job_config(tmp_path / "store", model={"template": "custom", "customModule": "half_out"},
                        training={"precision": "mixed_float16"})
    assert_failed_cleanly(config, train(config), report.EXIT_BAD_CONFIG,
                          "training.precision: with mixed_float16 the model's output must be float32, got float16")
