"""Canary on live quality on the real node: real serving replicas of two versions behind one Service, labeled
traffic that both answer, the operator (the chart's pod) judging them on what they measured.

v1 is a deliberately weak model (one epoch at a tiny learning rate; the gate is lowered to let it serve).
v2, trained properly, is served as a canary beside it, judged better and promoted while a bounded load runs:
not one request fails across the promotion, the stable Deployment's rollout and the canary's removal.
v3, weak again, is judged worse than v2 and aborted: removed, Rejected with the figures, v2 serving on.
"""
from __future__ import annotations

import json

import pytest

from modelops_training import data as training_data
from modelops_training import sources
from tests.e2e.pipeline_fixtures import (
    READY_TIMEOUT_S, apply, example, image_refs, pod_result, script_command, send_labeled, start_pod, wait_ready,
)
from tests.e2e.test_quality_loop import MODEL, condition, status
from tests.support.kube import kubectl_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2700)]

PAIRS = 40
# Judged on quality here: a 2-CPU node running training beside serving makes p99 too noisy to compare closely.
ROLLOUT = {"strategy": "Canary", "canary": {"replicas": 1, "minPairs": PAIRS, "minDurationSeconds": 20,
                                            "maxMetricDrop": 0.03, "maxLatencyP99Ratio": 10, "timeoutSeconds": 1200,
                                            "onTimeout": "Abort"}}
SPEC = {"training": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "3Gi"}}},
        "evaluation": {"threshold": {"min": 0.2}},
        "monitoring": {"enabled": True, "periodSeconds": 10, "minPairs": PAIRS},
        "serving": {"replicas": 2, "rollout": ROLLOUT}}
WEAK = {"training": {"hyperparameters": {"epochs": 1, "learningRate": 0.0001}}}
STRONG = {"training": {"hyperparameters": {"epochs": 15, "learningRate": 0.001}}}
WEAKER = {"training": {"hyperparameters": {"epochs": 1, "learningRate": 0.0001, "batchSize": 128}}}
# Unlabeled load during the promotion: bounded in count and time, as every load loop here.
LOAD = ["--max-requests", "20000", "--max-seconds", "600", "--concurrency", "2", "--pause-ms", "20"]


def digits(count: int, offset: int) -> tuple[list[list[float]], list[int]]:
    raw, label = sources.read_bytes("builtin:digits")
    table = training_data.parse_csv(raw, label, target=None, features=None)
    rows = [[float(v) for v in table.features[i]] for i in range(offset, offset + count)]
    return rows, [int(t) for t in table.target[offset:offset + count]]


def host(ns: str) -> str:
    return f"{MODEL}.{ns}.svc.cluster.local"


def send_digits(ns: str, pod: str, count: int, offset: int) -> dict:
    """`count` digits with their labels, in calls of 10 rows: each call a new connection, so the Service
    spreads them over the stable and canary pods (about a third to the one canary of three)."""
    return send_labeled(ns, pod, MODEL, *digits(count, offset), batch=10, max_seconds=180)


def deployments(ns: str) -> list[str]:
    return sorted(d["metadata"]["name"] for d in kubectl_json("get", "deployments", "-n", ns)["items"])


def reasons(ns: str) -> list[str]:
    return [e["reason"] for e in kubectl_json("get", "events", "-n", ns)["items"]
            if e["involvedObject"].get("name") == MODEL]


def canary_serving(ns: str, version: str) -> dict:
    return wait_for(lambda: (s := status(ns)).get("phase") == "Canary" and s.get("canary", {}).get("version") == version
                    and s["canary"].get("ready") == "1/1" and s, READY_TIMEOUT_S,
                    f"{version} to serve as a ready canary", interval=2)


def test_a_better_canary_is_promoted_under_load_without_a_failed_request_and_a_worse_one_aborted(model_namespace):
    ns = model_namespace.name
    apply(ns, example("digits-classifier.yaml", SPEC, WEAK))
    wait_ready(ns, MODEL, READY_TIMEOUT_S)
    assert deployments(ns) == [MODEL], "the first version has nothing to be compared with"

    apply(ns, example("digits-classifier.yaml", SPEC, STRONG))
    s = canary_serving(ns, "v2")
    assert s["modelVersion"] == "v1" and deployments(ns) == [MODEL, f"{MODEL}-canary"]
    row = digits(1, 1700)[0][0]
    start_pod(ns, "load", image_refs()["SERVING_IMAGE"], script_command(
        "load_client.py", "--host", host(ns), "--model", MODEL, "--row", json.dumps(row), *LOAD,
        "--until-version", "v2", "--settle-seconds", "30"))
    sent = send_digits(ns, "labeled-1", 300, 0)
    assert sent["statuses"] == {"200": 30} and sent["joined"] == 300, sent
    s = wait_for(lambda: (st := status(ns)).get("modelVersion") == "v2" and st.get("phase") == "Ready" and st,
                 READY_TIMEOUT_S, "v2 promoted and rolled out", interval=2)
    wait_for(lambda: deployments(ns) == [MODEL], 120, "the canary Deployment to be removed", interval=2)
    v2 = next(h for h in s["history"] if h["version"] == "v2")
    assert v2["outcome"] == "Deployed" and condition(s, "Canary")["reason"] == "CanaryPassed", (v2, s["conditions"])
    figures = v2["canary"]
    assert figures["canaryPairs"] >= PAIRS and figures["stablePairs"] >= PAIRS, figures
    assert figures["canaryValue"] >= figures["stableValue"] - 0.03, figures
    load = json.loads(pod_result(ns, "load", 700).strip().splitlines()[-1])
    print(f"promoted v2 on {figures}; load across the promotion: {load}")   # for docs/e2e.md
    assert load["failed"] == 0 and load["errors"] == [], load
    assert load["versions"].get("v1", 0) > 0 and load["versions"].get("v2", 0) > 0 and load["reachedVersion"], load

    apply(ns, example("digits-classifier.yaml", SPEC, WEAKER))
    canary_serving(ns, "v3")
    sent = send_digits(ns, "labeled-2", 300, 300)
    assert sent["joined"] == 300, sent
    s = wait_for(lambda: (st := status(ns)).get("history", [{}])[0].get("outcome") == "Rejected" and st,
                 300, "v3 to be rejected", interval=2)
    wait_for(lambda: deployments(ns) == [MODEL], 120, "the aborted canary's Deployment to be removed", interval=2)
    v3 = s["history"][0]
    print(f"rejected v3: {v3['message']}")
    assert v3["version"] == "v3" and v3["message"].startswith("MetricDropped: "), v3
    assert v3["canary"]["canaryValue"] < v3["canary"]["stableValue"] - 0.03, v3
    assert s["modelVersion"] == "v2" and condition(s, "Ready")["status"] == "True"
    assert reasons(ns).count("CanaryPromoted") == 1 and reasons(ns).count("CanaryAborted") == 1
