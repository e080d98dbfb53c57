"""Prometheus metrics of one server, in its own registry (no process-global state)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .feedback import Feedback
from .model import ServedModel

LATENCY_BUCKETS = (.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _LiveState(Collector):
    """Gauges read at scrape time, so the request path pays nothing for them."""

    def __init__(self, model: ServedModel, feedback: Callable[[], Feedback | None], queue_depth: Callable[[], int]):
        self._model, self._feedback, self._queue_depth = model, feedback, queue_depth

    def collect(self):
        m = self._model
        yield GaugeMetricFamily("modelops_queue_depth", "requests waiting for the model", value=self._queue_depth())
        yield GaugeMetricFamily("modelops_model_ready", "1 when the model serves", value=1.0 if m.ready else 0.0)
        info = GaugeMetricFamily("modelops_model_info", "the served model version", labels=["model", "version", "runtime"])
        info.add_metric([m.name, m.version, m.runtime.kind if m.runtime else ""], 1.0)
        yield info
        feedback = self._feedback()
        if feedback is None:
            return
        live = GaugeMetricFamily("modelops_live_metric", "metric over the feedback window", labels=["metric"])
        for name, value in feedback.live_metrics().items():
            live.add_metric([name], value)
        yield live
        yield GaugeMetricFamily("modelops_feedback_pairs", "joined (prediction, truth) pairs in the window",
                                value=feedback.pairs)
        drift = GaugeMetricFamily("modelops_prediction_distribution",
                                  "recent predictions: mean/std/quantiles (regression) or class shares",
                                  labels=["statistic"])
        for name, value in feedback.distribution().items():
            drift.add_metric([name], value)
        yield drift


class ServerMetrics:
    def __init__(self, model: ServedModel, feedback: Callable[[], Feedback | None], queue_depth: Callable[[], int]):
        self.registry = CollectorRegistry()
        self._requests = Counter("modelops_requests", "HTTP requests by route and status code",
                                 ["route", "code"], registry=self.registry)
        self._latency = Histogram("modelops_request_seconds", "HTTP request latency by route", ["route"],
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self._batch = Histogram("modelops_batch_rows", "rows per model call", buckets=BATCH_BUCKETS,
                                registry=self.registry)
        self.registry.register(_LiveState(model, feedback, queue_depth))
        self._children: dict = {}

    def observe_request(self, route: str, code: int, seconds: float) -> None:
        key = (route, code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self._requests.labels(route, str(code)), self._latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, rows: int) -> None:
        self._batch.observe(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
