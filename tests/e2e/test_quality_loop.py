"""The quality loop on the real node: real serving replicas measure their live quality, the operator (the
chart's pod, with the chart's RBAC) reads them through the API server's pod proxy, and labeled traffic from
a shifted distribution (the digits' pixels inverted) starts exactly one retrain, on the feedback the
replicas kept; more drifted traffic on the new version starts no other while the cooldown runs.
"""
from __future__ import annotations

import json

import pytest

from modelops_training import data as training_data
from modelops_training import sources
from tests.e2e.pipeline_fixtures import READY_TIMEOUT_S, apply, example, send_labeled, wait_ready
from tests.support.kube import kubectl, kubectl_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

MODEL = "digits"
MIN_PAIRS = 100
# limits.cpu 2: each serving pod runs two server processes, and still reports as one replica.
SPEC = {"training": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "3Gi"}}},
        "serving": {"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}},
        "monitoring": {"enabled": True, "periodSeconds": 10, "minPairs": MIN_PAIRS, "cooldownSeconds": 3600,
                       "maxRetrainsPerWindow": 3}}


def drifted(count: int, offset: int) -> tuple[list[list[int]], list[int]]:
    """`count` digits with their true labels, pixels inverted (16 - x): inputs the model never saw."""
    raw, label = sources.read_bytes("builtin:digits")
    table = training_data.parse_csv(raw, label, target=None, features=None)
    rows = [[16 - int(v) for v in table.features[i]] for i in range(offset, offset + count)]   # ints: a smaller pod spec
    return rows, [int(t) for t in table.target[offset:offset + count]]


def send_drifted(ns: str, pod: str, count: int, offset: int) -> dict:
    return send_labeled(ns, pod, MODEL, *drifted(count, offset), batch=20)


def status(ns: str) -> dict:
    return kubectl_json("get", "md", MODEL, "-n", ns).get("status", {})


def condition(s: dict, type_: str) -> dict:
    return next((c for c in s.get("conditions", []) if c["type"] == type_), {})


def retrain_events(ns: str) -> list[dict]:
    return [e for e in kubectl_json("get", "events", "-n", ns)["items"]
            if e["involvedObject"].get("name") == MODEL and e["reason"] == "VersionStarted"
            and "collected feedback" in e["message"]]


def test_drift_with_labels_retrains_exactly_once_and_the_cooldown_holds(model_namespace):
    ns = model_namespace.name
    apply(ns, example("digits-classifier.yaml", SPEC))
    wait_ready(ns, MODEL, READY_TIMEOUT_S)
    # Both real replicas answered through the pod proxy: figures, not yet enough pairs to judge.
    s = wait_for(lambda: (st := status(ns)).get("live", {}).get("replicas") == 2 and st, 60, "live figures of v1", interval=2)
    assert s["live"]["version"] == "v1" and condition(s, "LiveQuality")["reason"] == "TooFewPairs"
    server = kubectl_json("get", "deployment", MODEL, "-n", ns)["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODELOPS_WORKERS", "value": "2"} in server["env"]

    sent = send_drifted(ns, "labeled-1", 3 * MIN_PAIRS, 0)
    assert sent["statuses"] == {"200": 15} and sent["joined"] == 3 * MIN_PAIRS, sent
    s = wait_for(lambda: (st := status(ns)).get("latestVersion") == "v2" and st, 90, "a retrain on the drop", interval=2)
    v2 = next(h for h in s["history"] if h["version"] == "v2")
    assert (v2["trigger"], v2["triggerReason"]) == ("QualityDrop", "QualityDropped"), v2
    assert v2["figures"]["pairs"] >= MIN_PAIRS and v2["figures"]["value"] < 0.9, v2
    quality = condition(s, "LiveQuality")
    assert quality["status"] == "False" and quality["reason"] == "QualityDropped"
    config = json.loads(kubectl_json("get", "configmap", f"{MODEL}-train-v2-a1-config", "-n", ns)["data"]["job.json"])
    uid = kubectl_json("get", "md", MODEL, "-n", ns)["metadata"]["uid"]
    assert config["feedback"]["directory"] == f"/mnt/pvc/models/{ns}/{MODEL}/{uid}/feedback"
    # The replicas wrote what they joined to the claim (flushed at least every 30 s).
    feedback_dir = model_namespace.storage_dir / ns / MODEL / uid / "feedback"
    wait_for(lambda: list(feedback_dir.glob("seg-*.jsonl")), 60, "feedback segments on storage", interval=2)

    wait_for(lambda: status(ns).get("modelVersion") == "v2", READY_TIMEOUT_S, "v2 to serve", interval=2)
    wait_ready(ns, MODEL, READY_TIMEOUT_S)
    sent = send_drifted(ns, "labeled-2", 3 * MIN_PAIRS, 3 * MIN_PAIRS)
    assert sent["joined"] == 3 * MIN_PAIRS, sent
    s = wait_for(lambda: (st := status(ns)).get("live", {}).get("version") == "v2"
                 and st["live"].get("pairs", 0) >= MIN_PAIRS
                 and condition(st, "LiveQuality")["reason"] != "TooFewPairs" and st, 60, "v2 judged on its pairs", interval=2)
    quality = condition(s, "LiveQuality")
    # Better on the inverted digits or not, no third version: met, or dropped and held by the cooldown.
    assert quality["reason"] == "QualityMet" or "cooling down" in quality["message"], quality
    header, row = kubectl("get", "md", MODEL, "-n", ns).stdout.splitlines()[:2]
    assert row[header.index("LIVE"):].startswith(s["live"]["summary"].split(" ")[0])
    assert status(ns)["latestVersion"] == "v2" and len(retrain_events(ns)) == 1
