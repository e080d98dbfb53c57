"""Who the pods of a ModelDeployment run as: the operator's defaults, overridden per resource.

The images say `USER 65532:65532`, so that is the default. Storage decides the rest: hostPath and
NFS-type volumes ignore fsGroup, so their directory must be writable by runAsUser/runAsGroup;
OpenShift assigns its own UIDs, so an empty default leaves the fields to the platform. Whatever is
configured, every pod keeps the "restricted" Pod Security profile (runAsNonRoot, RuntimeDefault seccomp).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

ID_FIELDS = ("runAsUser", "runAsGroup", "fsGroup")
FIELDS = ID_FIELDS + ("fsGroupChangePolicy",)
CHANGE_POLICIES = ("Always", "OnRootMismatch")
MAX_ID = 2147483647
DEFAULTS: dict[str, Any] = {"runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                            "fsGroupChangePolicy": "OnRootMismatch"}
RESTRICTED = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


class PodSecurityError(ValueError):
    """Operator defaults that would make pods run as root or that Kubernetes would refuse."""


def check(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a podSecurityContext subset (as the CRD does for a resource); `where` names it in errors."""
    if not isinstance(values, Mapping):
        raise PodSecurityError(f"{where}: must be an object with {', '.join(FIELDS)}")
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise PodSecurityError(f"{where}.{unknown[0]}: unknown field (allowed: {', '.join(FIELDS)})")
    for key in ID_FIELDS:
        value = values.get(key)
        lowest = 1 if key == "runAsUser" else 0   # uid 0 is root, which the restricted profile refuses
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not lowest <= value <= MAX_ID):
            raise PodSecurityError(f"{where}.{key}: must be an integer from {lowest} to {MAX_ID}, got {value!r}")
    policy = values.get("fsGroupChangePolicy")
    if policy is not None and policy not in CHANGE_POLICIES:
        raise PodSecurityError(f"{where}.fsGroupChangePolicy: must be one of {', '.join(CHANGE_POLICIES)}, "
                               f"got {policy!r}")
    return {k: v for k, v in values.items() if v is not None}


def parse_defaults(text: str, where: str = "--pod-security-context") -> dict[str, Any]:
    """The operator's defaults from JSON (the chart's defaults.podSecurityContext); empty text: DEFAULTS."""
    if not text.strip():
        return dict(DEFAULTS)
    try:
        values = json.loads(text)
    except json.JSONDecodeError as e:
        raise PodSecurityError(f"{where}: not JSON: {e.msg}") from None
    return check(values, where)


def pod_security_context(defaults: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pod-level securityContext: the resource's fields win over the operator's, restricted always."""
    merged = {**defaults, **{k: v for k, v in (override or {}).items() if v is not None}}
    if "fsGroup" not in merged:
        merged.pop("fsGroupChangePolicy", None)   # meaningless without a group to change to
    return {**RESTRICTED, **{k: merged[k] for k in FIELDS if k in merged}}
