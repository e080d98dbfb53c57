"""A stage's outcome as its report: SIGTERM wins over whatever error TensorFlow turns it into."""
import os
import signal

from modelops_contracts import jobconfig

from modelops_training.errors import BadData
from modelops_training.stage import run_stage


def config(tmp_path):
    return jobconfig.JobConfig.from_dict({
        "apiVersion": "modelops.io/v1alpha1", "kind": "JobConfig", "stage": "train", "metric": "accuracy",
        "model": {"namespace": "ml", "name": "m", "version": "v1", "template": "mlp-classifier"},
        "data": {"uri": "builtin:digits"}, "storageRoot": str(tmp_path)})


def test_sigterm_inside_tensorflow_is_terminated_even_when_tensorflow_rewraps_it(tmp_path):
    """Seen in CI: the signal landed while TF bound a tf.function's inputs; TF re-raised the handler's
    Terminated as a TypeError, and the report said TrainingFailed instead of Terminated."""
    def work(cfg):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except Exception as e:                      # what tf.function's argument binding does
            raise TypeError(f"Binding inputs to tf.function failed due to `{e}`") from None
        raise AssertionError("the handler must have raised")

    report = run_stage("train", config(tmp_path), work)
    assert (report.succeeded, report.reason) == (False, "Terminated")
    assert report.message.startswith("train: stopped by SIGTERM") and "backup" in report.message


def test_a_stage_error_and_an_unexpected_one_keep_their_own_reasons(tmp_path):
    def bad(cfg):
        raise BadData("data: no rows")

    def broken(cfg):
        raise KeyError("x")

    before = signal.getsignal(signal.SIGTERM)
    assert run_stage("train", config(tmp_path), bad).reason == "BadData"
    unexpected = run_stage("compress", config(tmp_path), broken)
    assert unexpected.reason == "CompressionFailed" and "KeyError" in unexpected.message
    assert signal.getsignal(signal.SIGTERM) is before, "the stage's handler is removed once it ends"
