"""Why a Job's pods do not start: read from the pods and the Warning events, pure.

A Job whose pod cannot be pulled, scheduled, mounted or even created stays active with no
condition saying so (until its deadline), and our status would say "training" all along. The
kubelet, the scheduler and the Job controller each say why in their own place: a container's
waiting reason, the pod's PodScheduled condition, a Warning event on the pod or on the Job.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

# Container waiting reasons that do not clear up on their own (ContainerCreating and
# PodInitializing are progress, not trouble).
STUCK_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                           "CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
# Warning events that explain a Job without pods (FailedCreate: a quota, an admission refusal) or a
# scheduled pod that does not start (a volume that cannot be attached or mounted).
STUCK_EVENTS = frozenset({"FailedCreate", "FailedMount", "FailedAttachVolume"})
MAX_DETAIL = 300


@dataclass(frozen=True)
class Stuck:
    reason: str     # CamelCase, as Kubernetes said it (ImagePullBackOff, Unschedulable, FailedCreate, ...)
    message: str    # which object, and Kubernetes' own words


def starting(job: Mapping[str, Any]) -> bool:
    """An active Job with fewer ready or finished pods than it runs at once: worth asking why."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    done = (status.get("ready") or 0) + (status.get("succeeded") or 0)
    return done < (spec.get("parallelism") or 1)


def pods_missing(job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> bool:
    """Fewer live pods than the Job runs at once: it could not create some (a quota, an admission refusal)."""
    live = [p for p in pods if (p.get("status") or {}).get("phase") in (None, "Pending", "Running")
            and not (p.get("metadata") or {}).get("deletionTimestamp")]
    return len(live) < ((job.get("spec") or {}).get("parallelism") or 1)


def pods_to_ask_about(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """Scheduled pods still Pending with no reason in their status: only their events can say why."""
    names = []
    for pod in pods:
        status = pod.get("status") or {}
        scheduled = any(c.get("type") == "PodScheduled" and c.get("status") == "True"
                        for c in status.get("conditions") or [])
        if status.get("phase") == "Pending" and scheduled and _waiting(pod) is None:
            names.append(pod["metadata"]["name"])
    return names


def diagnose(pods: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]) -> Stuck | None:
    """The first reason found: a pod's stuck container, an unschedulable pod, then the newest Warning event."""
    for pod in pods:
        name = pod["metadata"]["name"]
        waiting = _waiting(pod)
        if waiting is not None:
            container, state = waiting
            return Stuck(state["reason"], f"pod {name}: container {container}: {state['reason']}: "
                                          f"{_short(state.get('message'))}")
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                    and condition.get("reason") == "Unschedulable"):
                return Stuck("Unschedulable", f"pod {name} cannot be scheduled: {_short(condition.get('message'))}")
    warnings = [e for e in events if e.get("type") == "Warning" and e.get("reason") in STUCK_EVENTS]
    if warnings:
        newest = max(warnings, key=_event_time)
        involved = newest.get("involvedObject") or {}
        return Stuck(newest["reason"], f"{involved.get('kind', 'object')} {involved.get('name', '')}: "
                                       f"{_short(newest.get('message'))}")
    return None


def replica_failure(deployment: Mapping[str, Any]) -> Stuck | None:
    """The Deployment's ReplicaFailure condition: its ReplicaSet could not create pods (a quota, an admission)."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            name = (deployment.get("metadata") or {}).get("name", "")
            return Stuck(condition.get("reason") or "FailedCreate",
                         f"Deployment {name}: {_short(condition.get('message'))}")
    return None


def _waiting(pod: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_WAITING:
            return container.get("name", "?"), waiting
    return None


def _event_time(event: Mapping[str, Any]) -> str:
    return event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get(
        "creationTimestamp") or ""


def _short(text: str | None) -> str:
    line = " ".join((text or "no details").split())
    return line if len(line) <= MAX_DETAIL else line[:MAX_DETAIL - 1] + "…"
