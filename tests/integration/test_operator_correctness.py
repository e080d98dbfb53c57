"""Issue 10: ways a ModelDeployment got stuck, judged a stranger's Job, or lost versions, reproduced on
the real control plane where the API server's answer decides the outcome."""
from modelops_contracts.report import StageReport, encode

from tests.integration.operator_fixtures import (
    apply, events, finish_job, load_example, md_status, wait_phase,
)


def auc_digits() -> dict:
    md = load_example("digits-classifier")
    md["spec"]["evaluation"] = {"metric": "auc", "threshold": {"min": 0.9}, "maxRetrains": 1}
    return md


def test_a_nan_metric_fails_the_version_instead_of_wedging_the_resource(operator, namespace):
    """A bare NaN in a report used to reach status, which the API server refuses to store, forever."""
    apply(namespace, auc_digits())
    wait_phase(namespace, "digits", "Training")
    text = encode(StageReport(stage="train", succeeded=True, version="v1", metric="auc",
                              metrics={"accuracy": 0.9, "auc": 0.123456}))
    finish_job(namespace, "digits-train-v1-a1", message=text.replace("0.123456", "NaN"))
    status = wait_phase(namespace, "digits", "Failed")
    assert "metrics.auc: nan is not a finite number" in status["message"]
    trained = next(c for c in status["conditions"] if c["type"] == "Trained")
    assert (trained["status"], trained["reason"]) == ("False", "InvalidReport")
    assert "ReconcileFailed" not in [e["reason"] for e in events(namespace, "digits")]
    assert "NaN" not in str(md_status(namespace, "digits"))
