"""Prometheus metrics of one server, in its own registry (no process-global state)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .feedback import Feedback
from .feedback_store import FeedbackStore
from .live import LiveMonitor
from .model import ServedModel

LATENCY_BUCKETS = (.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# The routes whose requests /v1/live counts: predictions, whichever protocol carried them.
PREDICTION_ROUTES = frozenset({"/v1/models/{name}:predict", "/v2/models/{name}/infer", "grpc:ModelInfer"})


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


class _WindowState(Collector):
    """/v1/live's figures as gauges, so dashboards and /v1/live read the same numbers."""

    def __init__(self, live: Callable[[], LiveMonitor | None]):
        self._live = live

    def collect(self):
        live = self._live()
        if live is None:
            return
        figures = live.figures()
        value = GaugeMetricFamily("modelops_live_window_value", "the evaluation metric over the /v1/live window's "
                                  "labeled pairs (absent while undefined)", labels=["metric"])
        if figures.value is not None:
            value.add_metric([figures.metric], figures.value)
        yield value
        yield GaugeMetricFamily("modelops_live_window_pairs", "labeled pairs in the /v1/live window",
                                value=figures.pairs)
        if figures.drift_score is not None:
            yield GaugeMetricFamily("modelops_drift_score", "largest PSI of a feature against the training data",
                                    value=figures.drift_score)
        drift = GaugeMetricFamily("modelops_feature_drift", "PSI of each input feature's recent values against the "
                                  "training data's reference bins", labels=["feature"])
        for feature, score in figures.drift.items():
            drift.add_metric([feature], score)
        yield drift


class _StoreState(Collector):
    """The feedback store's counters, read from the store at scrape time."""

    def __init__(self, store: Callable[[], FeedbackStore | None]):
        self._store = store

    def collect(self):
        store = self._store()
        if store is None:
            return
        c = store.counts
        for name, help_text, value in [
                ("modelops_feedback_written_records", "joined records written to feedback segments", c.written_records),
                ("modelops_feedback_written_segments", "feedback segment files written", c.written_segments),
                ("modelops_feedback_dropped_records", "joined records never written: over the memory cap "
                 "(feedback_buffer_records) while storage lagged, or not representable in JSON", c.dropped_records),
                ("modelops_feedback_dropped_segments", "feedback segments deleted, oldest first, to stay under "
                 "feedback_max_bytes", c.dropped_segments),
                ("modelops_feedback_write_errors", "failed segment writes (the records stay buffered)", c.write_errors)]:
            yield CounterMetricFamily(name, help_text, value=value)
        yield GaugeMetricFamily("modelops_feedback_buffered_records", "joined records waiting to be written",
                                value=store.buffered)


class ServerMetrics:
    def __init__(self, model: ServedModel, feedback: Callable[[], Feedback | None], queue_depth: Callable[[], int],
                 live: Callable[[], LiveMonitor | None] = lambda: None,
                 store: Callable[[], FeedbackStore | None] = lambda: None):
        self.registry = CollectorRegistry()
        self._live = live
        self._requests = Counter("modelops_requests", "HTTP requests by route and status code",
                                 ["route", "code"], registry=self.registry)
        self._latency = Histogram("modelops_request_seconds", "HTTP request latency by route", ["route"],
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self._batch = Histogram("modelops_batch_rows", "rows per model call", buckets=BATCH_BUCKETS,
                                registry=self.registry)
        self.registry.register(_LiveState(model, feedback, queue_depth))
        self.registry.register(_StoreState(store))
        self.registry.register(_WindowState(live))
        self._children: dict = {}

    def observe_request(self, route: str, code: int, seconds: float, predicted: bool = False) -> None:
        """`predicted`: a request on another route that made a prediction (feedback sent with its rows)."""
        key = (route, code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self._requests.labels(route, str(code)), self._latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)
        if (predicted or route in PREDICTION_ROUTES) and (live := self._live()) is not None:
            live.requests.observe(seconds, code >= 500)

    def observe_batch(self, rows: int) -> None:
        self._batch.observe(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
