"""Whether the storage claim can be shared the way the pipeline shares it (pure).

Training (read-write), every training worker, compression, clean-up and every serving replica mount
the same claim, and a new version trains while the current one serves. A ReadWriteOnce claim attaches
to one node at a time, so pods on a second node wait on Multi-Attach with no word from us (a
ReadWriteOncePod claim admits one pod, wherever it runs): say so early, as a condition and an Event.
Nothing is blocked: on a one-node cluster (kind) a ReadWriteOnce claim works.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .conditions import get_condition, set_condition
from .spec import Spec

CONDITION = "StorageShared"
SHARED_MODES = {"ReadWriteMany"}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    message: str


def access_modes(claim: Mapping[str, Any]) -> list[str]:
    """The modes the bound volume has; a claim not yet bound only says what it asked for."""
    return list((claim.get("status") or {}).get("accessModes") or (claim.get("spec") or {}).get("accessModes") or [])


def sharers(spec: Spec) -> list[str]:
    """Who mounts the storage claim at the same time, for the message."""
    out = []
    if spec.workers > 1:
        out.append(f"{spec.workers} training workers")
    replicas = spec.autoscaling_max if spec.autoscaling else spec.replicas
    if replicas > 1:
        out.append(f"up to {replicas} serving replicas")
    out.append("a new version's training while the current one serves")
    return out


def who_waits(modes: list[str]) -> str:
    """What happens to the pods that share a claim of one of the single-writer modes."""
    if "ReadWriteOncePod" in modes:
        return "ReadWriteOncePod admits one pod, so the others stay Pending, even on the same node"
    return "pods on another node wait on Multi-Attach"


def judge(spec: Spec, namespace: str, claims: Mapping[str, Mapping[str, Any] | None]) -> Verdict:
    """`claims`: the storage claim (and a pvc:// data claim) by name, None where it does not exist."""
    name = spec.storage_claim
    claim = claims.get(name)
    if claim is None:
        return Verdict(False, "ClaimNotFound", f"storage.uri: claim {name} does not exist in namespace {namespace}; "
                                               f"pods wait until it does")
    modes = access_modes(claim)
    if not SHARED_MODES & set(modes):
        writable = {"ReadWriteOnce", "ReadWriteOncePod"} & set(modes)
        if not writable:
            return Verdict(False, "ClaimReadOnly", f"storage.uri: claim {name} is {'/'.join(modes) or 'without access modes'}"
                                                   f": training cannot write model versions to it")
        return Verdict(False, "ClaimNotShared",
                       f"storage.uri: claim {name} is {'/'.join(modes)}, but {', '.join(sharers(spec))} mount it "
                       f"at once; {who_waits(modes)}. Use a ReadWriteMany claim "
                       f"(see docs/install.md, Running on real clusters)")
    for data_name, data_claim in claims.items():
        if data_name == name:
            continue
        if data_claim is None:
            return Verdict(False, "ClaimNotFound", f"data.uri: claim {data_name} does not exist in namespace "
                                                   f"{namespace}; training pods wait until it does")
        if spec.workers > 1 and not {"ReadWriteMany", "ReadOnlyMany"} & set(access_modes(data_claim)):
            return Verdict(False, "ClaimNotShared",
                           f"data.uri: claim {data_name} is {'/'.join(access_modes(data_claim))}, but "
                           f"{spec.workers} training workers read it at once; use ReadOnlyMany or ReadWriteMany")
    return Verdict(True, "ClaimShared", f"claim {name} is {'/'.join(modes)}")


def claim_names(spec: Spec) -> list[str]:
    names = [spec.storage_claim]
    if spec.data_uri.startswith("pvc://"):
        data = spec.data_uri[len("pvc://"):].split("/", 1)[0]
        if data not in names:
            names.append(data)
    return names


def record(status: dict[str, Any], verdict: Verdict, generation: int, now: str) -> list[tuple[str, str, str]]:
    """Set the condition in `status`; the Event only when the verdict changes, not on every pass."""
    conditions = list(status.get("conditions") or [])
    old = get_condition(conditions, CONDITION)
    status["conditions"] = set_condition(conditions, CONDITION, verdict.ok, verdict.reason, verdict.message,
                                         generation, now)
    if verdict.ok or (old and old.get("reason") == verdict.reason and old.get("message") == verdict.message):
        return []
    return [("Warning", verdict.reason, verdict.message)]
