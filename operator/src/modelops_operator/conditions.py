"""API-convention conditions: a list keyed by type, with a transition time that moves only on change."""
from __future__ import annotations

from typing import Any

CONDITION_TYPES = ("Trained", "Evaluated", "Compressed", "Deployed", "Ready", "LiveQuality")


def set_condition(conditions: list[dict[str, Any]], type_: str, status: bool | None, reason: str,
                  message: str, generation: int, now: str) -> list[dict[str, Any]]:
    """Return the conditions with `type_` set; lastTransitionTime changes only when status does."""
    text = status_text(status)
    old = next((x for x in conditions if x.get("type") == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == text and old.get("lastTransitionTime") else now
    new = {"type": type_, "status": text, "reason": reason, "message": message,
           "observedGeneration": generation, "lastTransitionTime": since}
    out = [x for x in conditions if x.get("type") != type_] + [new]
    return sorted(out, key=lambda x: CONDITION_TYPES.index(x["type"]) if x["type"] in CONDITION_TYPES else 99)


def status_text(status: bool | None) -> str:
    """A condition's status as the API writes it."""
    return "Unknown" if status is None else ("True" if status else "False")


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((x for x in conditions if x.get("type") == type_), None)
