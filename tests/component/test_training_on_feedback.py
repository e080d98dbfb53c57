"""The loop on one machine: train v1, serve it, label drifted production traffic, retrain v2 on the
collected feedback. Real TensorFlow, a real server process, the segment files between them."""
from __future__ import annotations

import json
import signal

import numpy as np
import pytest
from modelops_contracts import feedback as contract
from modelops_contracts import manifest as mf
from serving_fixtures import digits, running_server
from training_fixtures import job_config

from modelops_training import export
from modelops_training.train import train

pytestmark = pytest.mark.component
EPOCHS = 10


def accuracy_on(version_dir, x, y) -> float:
    return float(np.mean(export.load(version_dir).predict(x, verbose=0).argmax(axis=1) == y))


def label_production_traffic(version_dir, feedback, log_dir, x, y) -> int:
    """Inverted digits (production drifted), predicted by the served v1, then labeled by id."""
    with running_server(version_dir, "digits", log_dir, servable="keras", feedback_dir=feedback,
                        feedback_flush_s=3600) as server:
        server.wait_ready()
        for i in range(0, len(x), 30):
            pid = server.post("/v1/models/digits:predict", json={"instances": x[i:i + 30].tolist()}).json()["id"]
            answer = server.post("/v1/models/digits:feedback", json={"id": pid, "truth": y[i:i + 30].tolist()})
            assert answer.status_code == 200, answer.text
        drifted = server.get("/v1/live").json()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
    assert drifted["driftScore"] > 1.0, drifted     # the server saw the drift against v1's reference
    return sum(r.rows for _, records in contract.read_segments(feedback) for r in records)


def test_a_version_retrained_on_feedback_learns_what_production_taught(tmp_path):
    x, y = digits()
    inverted = 16.0 - x
    production, holdout = slice(0, 900), slice(1000, None)
    v1 = job_config(tmp_path / "storage", training={"epochs": EPOCHS})
    first = train(v1)
    assert first.succeeded, first.message
    assert mf.read(v1.version_dir).reference is not None

    feedback = tmp_path / "storage" / "ml" / "digits" / "feedback"
    assert label_production_traffic(v1.version_dir, feedback, tmp_path, inverted[production], y[production]) == 900

    v2 = job_config(tmp_path / "storage", model={"version": "v2"}, training={"epochs": EPOCHS},
                    feedback={"directory": str(feedback), "maxShare": 0.4})
    second = train(v2)
    assert second.succeeded, second.message

    before = accuracy_on(v1.version_dir, inverted[holdout], y[holdout])
    after = accuracy_on(v2.version_dir, inverted[holdout], y[holdout])
    assert after > before + 0.3 and after > 0.8, (before, after)
    assert second.metrics["accuracy"] >= 0.85             # still judged on the original held-out rows

    stats = {v: json.loads((cfg.version_dir / "metrics.json").read_text()) for v, cfg in (("v1", v1), ("v2", v2))}
    assert stats["v2"]["validationRows"] == stats["v1"]["validationRows"]
    assert stats["v2"]["trainingRows"] == stats["v1"]["trainingRows"] + 900
    fed = stats["v2"]["training"]["feedback"]
    assert (fed["rowsAdded"], fed["records"], fed["skipped"]) == (900, 30, {"inputs": 0, "truth": 0})
    m1, m2 = mf.read(v1.version_dir), mf.read(v2.version_dir)
    assert m1.extra["dataFingerprint"] == m2.extra["dataFingerprint"]
    assert m2.extra["training"]["feedback"]["sha256"] == fed["sha256"]


def test_a_corrupt_segment_fails_training_naming_it(tmp_path):
    feedback = tmp_path / "feedback"
    feedback.mkdir()
    record = contract.FeedbackRecord("p-1", "v1", inputs={"features": [[0.0] * 64]}, prediction=[[0.1] * 10],
                                     truth=[3], time=1.0)
    segment = contract.write_segment(feedback, "pod-a", 0, 1, [record])
    segment.write_text(segment.read_text()[:-20])
    config = job_config(tmp_path / "storage", feedback={"directory": str(feedback), "maxShare": 0.2})
    result = train(config)
    assert not result.succeeded and result.reason == "BadData"
    assert str(segment) in result.message and "feedback" in result.message
