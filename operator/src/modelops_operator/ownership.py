"""Whose is an object that has the name one of our children needs? Pure, over API dicts.

Names are deterministic, so a name alone proves nothing: a user's Service, the Jobs of an
earlier ModelDeployment of the same name (still being garbage-collected, or orphaned with
`--cascade=orphan`) or a Job of a spec we no longer run can hold it. Only an owner reference
to this resource's uid (or, for the clean-up Job, which has no owner, the uid label) makes an
object ours; one modelops made for an earlier incarnation of this name is stale (replaced);
anything else is foreign and is never written, adopted or deleted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from . import constants as c

OURS, STALE, FOREIGN = "ours", "stale", "foreign"


@dataclass(frozen=True)
class InTheWay:
    """An existing object, not ours, holding the name of one we want."""
    kind: str
    name: str
    verdict: str              # STALE or FOREIGN
    component: str            # of the object we wanted (training, compression, serving)
    uid: str
    deleting: bool
    holder: str               # who owns it, for messages

    @property
    def message(self) -> str:
        return (f"{self.kind} {self.name} exists and is not owned by this ModelDeployment ({self.holder}): "
                "rename or delete it")


def verdict(obj: Mapping[str, Any], owner_uid: str, owner_name: str, spec_hash: str | None = None) -> str:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    refs = meta.get("ownerReferences") or []
    if any(r.get("uid") == owner_uid for r in refs) or (not refs and labels.get(c.LABEL_OWNER_UID) == owner_uid):
        made_for = labels.get(c.LABEL_SPEC_HASH)
        # A Job of a spec this run is not for would be judged as this spec's result.
        return STALE if spec_hash and made_for and made_for != spec_hash else OURS
    ours_by_label = labels.get(c.LABEL_MANAGED_BY) == c.MANAGED_BY and labels.get(c.LABEL_MODEL) == owner_name
    if ours_by_label and all(r.get("kind") == c.KIND and r.get("apiVersion", "").startswith(c.GROUP + "/")
                             for r in refs):
        return STALE
    return FOREIGN


def adoptable(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """An immutable object found under the name of one we create is ours to adopt only when it was made
    for the same resource: by uid (owner reference, or the label of the owner-less clean-up Job), never by name."""
    uid = ((wanted.get("metadata") or {}).get("labels") or {}).get(c.LABEL_OWNER_UID)
    return bool(uid) and verdict(existing, uid, owner_name="") == OURS


def holder(obj: Mapping[str, Any]) -> str:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    if not refs:
        return "it has no owner"
    return "owned by " + ", ".join(f"{r.get('kind')} {r.get('name')} uid {r.get('uid')}" for r in refs)


def in_the_way(wanted: Mapping[str, Any], existing: Mapping[str, Any] | None, owner_uid: str,
               owner_name: str) -> InTheWay | None:
    """None when the name is free or the object there is ours; else what stands in the way."""
    if existing is None:
        return None
    labels = wanted["metadata"].get("labels") or {}
    found = verdict(existing, owner_uid, owner_name, labels.get(c.LABEL_SPEC_HASH))
    if found == OURS:
        return None
    meta = existing["metadata"]
    return InTheWay(kind=wanted["kind"], name=meta["name"], verdict=found,
                    component=labels.get("app.kubernetes.io/component", ""), uid=meta.get("uid", ""),
                    deleting=bool(meta.get("deletionTimestamp")), holder=holder(existing))
