"""The operator's Prometheus metrics: reconciles, errors, time spent per phase, models per phase."""
from __future__ import annotations

import threading
import time
from collections import Counter

from prometheus_client import CollectorRegistry, Counter as PCounter, Gauge, Histogram, start_http_server

PHASES = ("Pending", "Training", "Evaluating", "Retraining", "Compressing", "Deploying", "Ready", "Failed")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.reconciles = PCounter("modelops_reconciles_total", "Reconcile passes by result (ok, conflict, error).",
                                   ["result"], registry=self.registry)
        self.reconcile_seconds = Histogram("modelops_reconcile_duration_seconds", "Time of one reconcile pass.",
                                           registry=self.registry,
                                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.phase_seconds = Histogram("modelops_phase_duration_seconds",
                                       "Time a ModelDeployment spent in a phase before leaving it.", ["phase"],
                                       registry=self.registry,
                                       buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600))
        self.models = Gauge("modelops_models", "ModelDeployments by phase.", ["phase"], registry=self.registry)
        self._phases: dict[tuple[str, str], tuple[str, float]] = {}
        self._guard = threading.Lock()
        for phase in PHASES:
            self.models.labels(phase).set(0)

    def reconciled(self, result: str, seconds: float) -> None:
        self.reconciles.labels(result).inc()
        self.reconcile_seconds.observe(seconds)

    def observe_phase(self, namespace: str, name: str, phase: str) -> None:
        with self._guard:
            old = self._phases.get((namespace, name))
            if old and old[0] == phase:
                return
            if old:
                self.phase_seconds.labels(old[0]).observe(time.monotonic() - old[1])
            self._phases[(namespace, name)] = (phase, time.monotonic())
            self._publish()

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            if self._phases.pop((namespace, name), None):
                self._publish()

    def _publish(self) -> None:
        counts = Counter(phase for phase, _ in self._phases.values())
        for phase in PHASES:
            self.models.labels(phase).set(counts.get(phase, 0))

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        start_http_server(port, addr=host, registry=self.registry)
