"""Several workers' Prometheus expositions as one: every sample labeled with its worker, one HELP/TYPE per family."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelops_serving.siblings import merge_expositions


def exposition(requests: int, depth: float) -> bytes:
    registry = CollectorRegistry()
    Counter("reqs", "requests", ["route"], registry=registry).labels("/p").inc(requests)
    Gauge("depth", "queue depth", registry=registry).set(depth)
    Histogram("secs", "latency", buckets=(0.1, 1.0), registry=registry).observe(0.5)
    return generate_latest(registry)


def test_each_sample_keeps_its_labels_and_gains_its_worker_and_the_text_still_parses():
    merged = merge_expositions({0: exposition(3, 1), 1: exposition(4, 2)})
    families = {f.name: f for f in text_string_to_metric_families(merged.decode())}
    reqs = {(s.labels["worker"], s.labels["route"]): s.value for s in families["reqs"].samples if s.name == "reqs_total"}
    assert reqs == {("0", "/p"): 3.0, ("1", "/p"): 4.0}
    assert {s.labels["worker"]: s.value for s in families["depth"].samples} == {"0": 1.0, "1": 2.0}
    buckets = [s for s in families["secs"].samples if s.name == "secs_bucket" and s.labels["le"] == "1.0"]
    assert sorted((s.labels["worker"], s.value) for s in buckets) == [("0", 1.0), ("1", 1.0)]
    assert merged.count(b"# TYPE reqs_total counter") == 1 and merged.count(b"# HELP depth ") == 1
