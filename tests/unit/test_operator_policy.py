"""The pipeline policy: the evaluation gate, retrains, and the compression tolerance."""
import pytest

from modelops_contracts.report import StageReport
from modelops_operator import policy
from modelops_operator.spec import parse
from operator_samples import example


def spec(**evaluation):
    s = example("digits-classifier")["spec"]      # accuracy >= 0.9, maxRetrains 2, int8, tolerance 0.01
    s["evaluation"].update(evaluation)
    return parse(s)


def trained(accuracy):
    return StageReport(stage="train", succeeded=True, version="v1", metric="accuracy", metrics={"accuracy": accuracy})


def test_a_metric_that_meets_the_threshold_goes_to_compression():
    assert isinstance(policy.after_training(spec(), 1, trained(0.95)), policy.Compress)


def test_a_metric_below_the_threshold_retrains_with_the_next_attempt_until_retrains_run_out():
    first = policy.after_training(spec(), 1, trained(0.5))
    assert first == policy.Retrain(attempt=2, reason="ThresholdNotMet", message=first.message)
    assert "accuracy=0.5 does not meet the threshold >= 0.9" in first.message
    assert isinstance(policy.after_training(spec(), 2, trained(0.5)), policy.Retrain)
    last = policy.after_training(spec(), 3, trained(0.5))
    assert isinstance(last, policy.Fail) and last.reason == "RetrainsExhausted"


def test_no_retrains_means_the_first_miss_fails():
    assert isinstance(policy.after_training(spec(maxRetrains=0), 1, trained(0.5)), policy.Fail)


def test_bad_data_is_not_retried_but_a_crash_is():
    bad = StageReport(stage="train", succeeded=False, version="v1", reason="BadData", message="no column y")
    decision = policy.after_training(spec(), 1, bad)
    assert decision == policy.Fail(reason="BadData", message="attempt 1: no column y")
    crash = policy.after_training(spec(), 1, None, failure_reason="Error", failure_message="pod exited 1")
    assert isinstance(crash, policy.Retrain) and crash.reason == "Error"


@pytest.mark.parametrize("reason", ["OOMKilled", "GPUUnavailable"])
def test_what_another_seed_cannot_fix_fails_at_once(reason):
    """The same memory limit runs out of memory again; an image or node without GPUs stays without them."""
    decision = policy.after_training(spec(), 1, None, failure_reason=reason, failure_message="pod exited")
    assert isinstance(decision, policy.Fail) and decision.reason == reason


def compressed(accuracy):
    return StageReport(stage="compress", succeeded=True, version="v1", metric="accuracy",
                       metrics={"accuracy": accuracy}, compression={"ratio": 3.9})


def test_compression_within_tolerance_serves_the_compressed_model():
    assert policy.after_compression(spec(), compressed(0.945), 0.95).servable == "tflite"


def test_compression_past_tolerance_serves_uncompressed_or_fails_per_policy():
    s = spec()
    fallback = policy.after_compression(s, compressed(0.90), 0.95)
    assert fallback.servable == "tfliteFloat32" and fallback.reason == "DegradationExceeded"
    raw = example("digits-classifier")["spec"]
    raw["compression"]["onDegradation"] = "Fail"
    assert isinstance(policy.after_compression(parse(raw), compressed(0.90), 0.95), policy.Fail)


@pytest.mark.parametrize("metric, before, after, lost", [
    ("accuracy", 0.95, 0.94, 0.01), ("mse", 0.10, 0.12, 0.02), ("r2", 0.5, 0.6, -0.1), ("mae", 1.0, 0.9, -0.1)])
def test_degradation_is_measured_in_the_direction_of_worse(metric, before, after, lost):
    assert policy.degradation(metric, before, after) == pytest.approx(lost)


def test_a_failed_compression_serves_the_float32_tflite_model_only_when_there_is_one():
    """The serving image runs LiteRT only: the uncompressed fallback must be a TFLite file, or there is none."""
    failed = StageReport(stage="compress", succeeded=False, version="v1", reason="CompressionFailed",
                         message="compression.method int8: RuntimeError: boom",
                         compression={"float32File": "model-float32.tflite"})
    served = policy.after_compression(spec(), failed, 0.95)
    assert isinstance(served, policy.Serve) and served.servable == "tfliteFloat32"
    assert "float32 TFLite" in served.message
    nothing = policy.after_compression(spec(), None, 0.95, failure_message="pod exited with code 137 (OOMKilled)")
    assert isinstance(nothing, policy.Fail) and "nothing to serve" in nothing.message
