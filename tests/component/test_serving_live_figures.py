"""GET /v1/live on a real server: the window's metric, pairs, requests, errors, p99 and drift per feature."""
import json
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from modelops_contracts import feedback as contract
from modelops_contracts.live import LiveFigures
from modelops_contracts.manifest import FILENAME
from modelops_training.reference import table_reference
from serving_fixtures import digits, digits_dir, free_port, reference_outputs, running_server  # noqa: F401

pytestmark = pytest.mark.component
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def referenced_dir(digits_dir, tmp_path_factory):
    """The digits version with what the trainer now writes: the training data's reference and the metric."""
    root = tmp_path_factory.mktemp("referenced") / "v1"
    shutil.copytree(digits_dir, root)
    x, _ = digits()
    manifest = json.loads((root / FILENAME).read_text())
    names = manifest["featureNames"]
    manifest["reference"] = table_reference(x, names, "features").to_dict()
    manifest["extra"]["metric"] = "accuracy"
    (root / FILENAME).write_text(json.dumps(manifest))
    return root


def live(server) -> LiveFigures:
    answer = server.get("/v1/live")
    assert answer.status_code == 200, answer.text
    return LiveFigures.from_dict(answer.json())


def predict(server, rows) -> str:
    answer = server.post("/v1/models/digits:predict", json={"instances": rows.tolist()})
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def test_live_figures_follow_the_traffic_labels_and_drift(referenced_dir, tmp_path):
    x, y = digits()
    with running_server(referenced_dir, "digits", tmp_path, live_rows=300, replica="pod-live") as server:
        server.wait_ready()
        quiet = live(server)
        assert (quiet.requests, quiet.pairs, quiet.value, quiet.latency_p99_ms) == (0, 0, None, None)
        assert quiet.drift == {} and quiet.drift_reason == "no inputs in the window"

        ids = [predict(server, x[i:i + 30]) for i in range(0, 300, 30)]
        calm = live(server)
        assert (calm.version, calm.replica, calm.metric, calm.requests, calm.errors) == ("v1", "pod-live", "accuracy", 10, 0)
        assert len(calm.drift) == 64 and calm.drift_score < 0.25, calm.drift_score
        assert calm.latency_p99_ms > 0

        for pid, i in zip(ids[:2], (0, 30)):
            assert server.post("/v1/models/digits:feedback", json={"id": pid, "truth": y[i:i + 30].tolist()}).status_code == 200
        labeled = live(server)
        expected = float(np.mean(reference_outputs(referenced_dir, x[:60]).argmax(axis=1) == y[:60]))
        assert labeled.pairs == 60 and labeled.value == pytest.approx(expected)
        # /metrics tells the same story.
        assert server.metric("modelops_feedback_pairs") == 60
        assert server.metric("modelops_live_metric", metric="accuracy") == pytest.approx(expected)

        for i in range(0, 300, 30):
            predict(server, 16.0 - x[i:i + 30])               # inverted pixels: far from the training data
        shifted = live(server)
        assert shifted.drift_score > 1.0 and shifted.drift_score == max(shifted.drift.values())
        assert server.metric("modelops_drift_score") == pytest.approx(shifted.drift_score)
        worst = max(shifted.drift, key=shifted.drift.get)
        assert server.metric("modelops_feature_drift", feature=worst) == pytest.approx(shifted.drift[worst])
        assert server.metric("modelops_live_window_value", metric="accuracy") == pytest.approx(expected)
        assert server.metric("modelops_live_window_pairs") == 60
        assert server.post("/v1/models/digits:predict", json={"instances": [[1.0]]}).status_code == 400
        after_bad = live(server)
        assert (after_bad.requests, after_bad.errors) == (21, 0)    # a client's mistake is not the server's error


def test_feedback_with_its_instances_is_a_prediction_and_feedback_by_id_is_not(referenced_dir, tmp_path):
    """A client that sends rows with their truth in one call (`{"instances", "truth"}`) gets predictions
    made: they count as requests and inputs, or a canary taking only such traffic could never be judged."""
    x, y = digits()
    with running_server(referenced_dir, "digits", tmp_path, live_rows=300) as server:
        server.wait_ready()
        for i in range(0, 150, 30):
            body = {"instances": (16.0 - x[i:i + 30]).tolist(), "truth": y[i:i + 30].tolist()}
            assert server.post("/v1/models/digits:feedback", json=body).status_code == 200
        joined = live(server)
        assert (joined.requests, joined.errors, joined.pairs) == (5, 0, 150)
        assert joined.latency_p99_ms > 0 and joined.drift_score > 1.0, joined

        pid = predict(server, x[:10])
        assert server.post("/v1/models/digits:feedback", json={"id": pid, "truth": y[:10].tolist()}).status_code == 200
        assert live(server).requests == 6, "feedback by id predicts nothing: only the prediction counts"


def test_a_version_without_a_reference_serves_and_says_why_drift_is_absent(digits_dir, tmp_path):
    x, _ = digits()
    with running_server(digits_dir, "digits", tmp_path) as server:
        server.wait_ready()
        predict(server, x[:5])
        figures = live(server)
        assert figures.requests == 1 and figures.drift == {} and figures.drift_score is None
        assert "no reference distribution" in figures.drift_reason


def test_predictions_over_grpc_count_and_take_feedback_like_rest_ones(referenced_dir, tmp_path):
    x, y = digits()
    port = free_port()
    with running_server(referenced_dir, "digits", tmp_path, grpc_port=port, feedback_dir=tmp_path / "fb",
                        feedback_flush_s=3600) as server:
        server.wait_ready()
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
        ids = []
        for i in range(3):
            tensor = grpcclient.InferInput("features", [5, 64], "FP32")
            tensor.set_data_from_numpy(x[i * 5:i * 5 + 5])
            response = client.infer("digits", [tensor]).get_response(as_json=True)
            ids.append(response["parameters"]["prediction_id"]["string_param"])
        answer = server.post("/v1/models/digits:feedback", json={"id": ids[1], "truth": y[5:10].tolist()})
        assert answer.status_code == 200 and answer.json()["joined"] == 5
        figures = live(server)
        assert (figures.requests, figures.errors, figures.pairs) == (3, 0, 5) and len(figures.drift) == 64
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
    (record,) = [r for _, records in contract.read_segments(tmp_path / "fb") for r in records]
    assert record.prediction_id == ids[1] and record.inputs == {"features": x[5:10].tolist()}


def test_every_series_the_grafana_dashboard_reads_is_exported(referenced_dir, tmp_path):
    """The chart's dashboard queries series by name: each must be one a real server exports."""
    dashboard = json.loads((REPO / "manifests/helm/modelops/dashboards/modelops-serving.json").read_text())
    wanted = {name for panel in dashboard["panels"] for target in panel["targets"]
              for name in re.findall(r"\b(modelops_[a-z_]+)\{", target["expr"])}   # a series, not a label
    x, y = digits()
    with running_server(referenced_dir, "digits", tmp_path, replica="pod-dash",
                        feedback_dir=tmp_path / "feedback") as server:
        server.wait_ready()
        pid = predict(server, x[:30])
        assert server.post("/v1/models/digits:feedback", json={"id": pid, "truth": y[:30].tolist()}).status_code == 200
        exported = {line.split("{")[0].split(" ")[0] for line in server.get("/metrics").text.splitlines()
                    if line and not line.startswith("#")}
    assert len(wanted) >= 8 and wanted <= exported, sorted(wanted - exported)
