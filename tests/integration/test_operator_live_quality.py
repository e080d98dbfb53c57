"""spec.monitoring where the API server decides: defaults and refusals, status.live kept by the schema and
shown as the Live column, the chart's pods/proxy permission, and the operator's periodic read.

Replicas on this control plane are kwok's, with addresses nobody answers on: no test here lets the
operator read a Ready replica (the API server would send traffic to it). Real figures from real serving
processes are the real node's (tests/e2e/test_quality_loop.py).
"""
import json
import time

from tests.integration.operator_fixtures import (
    OperatorProcess, apply, events, finish_job, load_example, md_status, report, wait_md, wait_phase,
)
from tests.integration.test_operator_operations import RULES, service_account_kubeconfig
from tests.support.kube import kubectl, kubectl_json

LIVE = {"observedAt": "2026-12-01T12:00:00Z", "replicas": 2, "version": "v1",
        "summary": "accuracy=0.93 (412 pairs) drift=0.31", "metric": "accuracy", "value": 0.93, "pairs": 412,
        "requests": 900, "errors": 0, "windowSeconds": 300.0, "latencyP99Ms": 7.5,
        "drift": {"pixel_3": 0.31, "pixel_9": 0.02}, "driftScore": 0.31,
        "versions": {"v1": {"metric": "accuracy", "value": 0.93, "pairs": 412, "requests": 900, "errors": 0,
                            "windowSeconds": 300.0, "drift": {"pixel_3": 0.31}, "driftScore": 0.31, "replicas": 2}}}


def test_the_api_server_defaults_monitoring_and_refuses_a_threshold_against_the_metric(crd, namespace):
    md = load_example("digits-classifier")
    md["spec"]["monitoring"] = {"enabled": True}
    apply(namespace, md)
    spec = kubectl_json("get", "md/digits", "-n", namespace)["spec"]["monitoring"]
    assert spec == {"enabled": True, "periodSeconds": 60, "minPairs": 200, "cooldownSeconds": 3600,
                    "maxRetrainsPerWindow": 3, "windowSeconds": 86400, "onQualityDrop": "Retrain",
                    "feedbackMaxShare": 0.2}
    for monitoring, message in [
        ({"threshold": {"max": 0.2}}, "monitoring.threshold.max must be used with a lower-is-better metric"),
        ({"threshold": {}}, "exactly one of monitoring.threshold.min and monitoring.threshold.max must be set"),
        ({"periodSeconds": 5}, "spec.monitoring.periodSeconds: Invalid value: 5"),
        ({"onQualityDrop": "Rollback"}, "spec.monitoring.onQualityDrop: Unsupported value"),
    ]:
        md["spec"]["monitoring"] = monitoring
        result = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(md), check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr


def test_status_live_is_kept_by_the_schema_and_shown_as_the_live_column(crd, namespace):
    apply(namespace, load_example("digits-classifier"))
    live = {**LIVE, "unknownFigure": 1}
    kubectl("patch", "md/digits", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"phase": "Ready", "modelVersion": "v1", "live": live}}))
    stored = md_status(namespace, "digits")["live"]
    assert stored == LIVE                                             # every field kept, the unknown one pruned
    header, row = kubectl("get", "md/digits", "-n", namespace).stdout.splitlines()
    start = header.index("LIVE")
    assert row[start:].startswith("accuracy=0.93 (412 pairs) drift=0.31")


def test_the_charts_rules_allow_get_on_pods_proxy_and_nothing_else_there(crd, namespace, tmp_path):
    service_account_kubeconfig(namespace, tmp_path)
    who = f"--as=system:serviceaccount:{namespace}:modelops-operator"

    def can(verb: str, resource: str) -> bool:
        kind, _, sub = resource.partition("/")   # `can-i VERB pods/x` would ask about the pod named x
        result = kubectl("auth", "can-i", verb, kind, f"--subresource={sub}", "-n", namespace, who, check=False)
        return result.stdout.strip() == "yes"

    assert can("get", "pods/proxy")
    assert not any(can(verb, "pods/proxy") for verb in ("create", "update", "patch", "delete"))
    assert not can("get", "services/proxy") and not can("create", "pods/exec") and not can("get", "nodes/proxy")
    # Without the rule the same account is refused: the permission comes from the chart's rule alone.
    without = [r for r in RULES if "pods/proxy" not in r["resources"]]
    assert len(without) == len(RULES) - 1
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": f"modelops-operator-{namespace}"}, "rules": without}))
    assert not can("get", "pods/proxy")


def test_the_operator_reads_each_period_and_says_when_no_replica_answers(crd, namespace, storage, tmp_path):
    """Zero serving replicas: nothing to read (and no traffic), so every period publishes 'no figures'."""
    env = {"KUBECONFIG": service_account_kubeconfig(namespace, tmp_path)}
    op = OperatorProcess(namespace, tmp_path, env).start()
    try:
        md = load_example("digits-classifier")
        md["spec"]["serving"]["replicas"] = 0
        md["spec"]["monitoring"] = {"enabled": True, "periodSeconds": 10}
        apply(namespace, md)
        finish_job(namespace, "digits-train-v1-a1", message=report("train", "v1", {"accuracy": 0.95}))
        wait_phase(namespace, "digits", "Compressing")
        finish_job(namespace, "digits-compress-v1", message=report("compress", "v1", {"accuracy": 0.949}))
        first = wait_md(namespace, "digits", lambda s: "live" in s, "status.live", timeout=60)
        assert first["live"]["summary"] == "no figures" and first["live"]["replicas"] == 0
        quality = next(c for c in first["conditions"] if c["type"] == "LiveQuality")
        assert (quality["status"], quality["reason"]) == ("Unknown", "NoFigures")
        started = time.monotonic()
        later = wait_md(namespace, "digits", lambda s: s["live"]["observedAt"] != first["live"]["observedAt"],
                        "the next period's read", timeout=40)
        assert time.monotonic() - started < 25                         # the requeue, not a watch event, read again
        assert later["live"]["observedAt"] > first["live"]["observedAt"]
        assert [e["reason"] for e in events(namespace, "digits")].count("NoFigures") == 1   # on change only
        row = kubectl("get", "md/digits", "-n", namespace).stdout.splitlines()
        assert "no figures" in row[1][row[0].index("LIVE"):]
    finally:
        op.stop()
    assert "Forbidden" not in op.log.read_text()
