"""Live figures of the serving replicas: which to read, when, and what status.live says about them.

The reading itself (`read`) goes through Kube's pod proxy, so it works under any NetworkPolicy that
lets the API server reach the pods (as the kubelet's probes must). The rest is pure: the pipeline turns
a `Reading` into status.live and a monitoring decision.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from modelops_contracts.live import LiveError, LiveFigures, aggregate

from . import constants as c

PATH = "v1/live"
MAX_FAILURES_SHOWN = 3


class PodProxy(Protocol):
    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str) -> bytes: ...


@dataclass(frozen=True)
class Reading:
    """One read of every ready serving replica: the figures per version, and who did not answer."""
    at: str
    versions: dict[str, LiveFigures] = field(default_factory=dict)   # version -> its replicas' aggregate
    failures: tuple[str, ...] = ()                                   # "pod: why", for the message


def parse_time(ts: str) -> float:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def due(status: Mapping[str, Any], period_s: float, now: str) -> float:
    """Seconds until the next read is due (0: now), from when the last one was made."""
    last = (status.get("live") or {}).get("observedAt")
    if not last:
        return 0.0
    return max(0.0, period_s - (parse_time(now) - parse_time(last)))


def ready_pods(pods: list[Mapping[str, Any]]) -> list[str]:
    """Names of the pods that are Ready and not on their way out: the ones taking traffic."""
    def ready(pod: Mapping[str, Any]) -> bool:
        conditions = (pod.get("status") or {}).get("conditions") or []
        return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conditions)
    return sorted(p["metadata"]["name"] for p in pods
                  if ready(p) and not p["metadata"].get("deletionTimestamp"))


def read(kube: PodProxy, namespace: str, pods: list[str], now: str) -> Reading:
    """Ask each pod for its figures; one that does not answer, or answers nonsense, is left out and named."""
    figures: list[LiveFigures] = []
    failures: list[str] = []
    for pod in pods:
        try:
            figures.append(LiveFigures.from_dict(json.loads(kube.pod_proxy_get(namespace, pod, c.SERVING_PORT, PATH))))
        except (LiveError, ValueError) as e:
            failures.append(f"{pod}: invalid live figures: {e}")
        except Exception as e:  # noqa: BLE001 - an unreachable replica is a figure missing, not a failed pass
            failures.append(f"{pod}: {_why(e)}")
    return Reading(at=now, versions=by_version(figures), failures=tuple(failures))


def by_version(figures: list[LiveFigures]) -> dict[str, LiveFigures]:
    versions: dict[str, list[LiveFigures]] = {}
    for f in figures:
        versions.setdefault(f.version, []).append(f)
    out = {}
    for version, replicas in versions.items():
        try:
            out[version] = aggregate(replicas)
        except LiveError:   # replicas of one version disagreeing on the metric: show the largest group
            metric = max({r.metric for r in replicas}, key=lambda m: sum(r.metric == m for r in replicas))
            out[version] = aggregate([r for r in replicas if r.metric == metric])
    return out


def _why(error: Exception) -> str:
    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None) or type(error).__name__
    return f"{status} {reason}" if status else str(reason)[:200]


def summary(f: LiveFigures) -> str:
    """One line for `kubectl get`: the metric over its pairs, and drift when measured."""
    value = f"{f.metric}={f.value:.4g}" if f.value is not None else f"{f.metric}=-"
    drift = f" drift={f.drift_score:.2g}" if f.drift_score is not None else ""
    return f"{value} ({f.pairs} pairs){drift}"


def figures_status(f: LiveFigures) -> dict[str, Any]:
    """A version's figures as status.live holds them (absent figures left out: the schema has no nulls)."""
    out = {"metric": f.metric, "value": f.value, "pairs": f.pairs, "requests": f.requests, "errors": f.errors,
           "windowSeconds": f.window_seconds, "latencyP99Ms": f.latency_p99_ms, "drift": dict(f.drift),
           "driftScore": f.drift_score, "driftReason": f.drift_reason or None, "replicas": len(f.replica.split(","))}
    return {k: v for k, v in out.items() if v is not None}


def published(status: Mapping[str, Any]) -> dict[str, LiveFigures]:
    """The figures per version as the last read left them in status.live (figures_status's inverse, less the
    replicas' names): what a decision between two reads rests on. A version whose entry is malformed is left out."""
    out = {}
    for version, figures in ((status.get("live") or {}).get("versions") or {}).items():
        try:
            out[version] = LiveFigures.from_dict({**figures, "version": version, "replica": ""})
        except LiveError:
            continue
    return out


def status_of(reading: Reading, served: str | None) -> dict[str, Any]:
    """status.live: the served version's figures at the top (what is judged), every version's below."""
    out: dict[str, Any] = {"observedAt": reading.at, "replicas": 0,
                           "versions": {v: figures_status(f) for v, f in sorted(reading.versions.items())}}
    if served:
        out["version"] = served
    current = reading.versions.get(served or "")
    out["summary"] = summary(current) if current is not None else "no figures"
    if current is not None:
        out.update(figures_status(current))
    if reading.failures:
        shown = "; ".join(reading.failures[:MAX_FAILURES_SHOWN])
        more = len(reading.failures) - MAX_FAILURES_SHOWN
        out["unreachable"] = shown + (f"; and {more} more" if more > 0 else "")
    return out
