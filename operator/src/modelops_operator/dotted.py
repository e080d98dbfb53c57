"""Reading a resource's nested fields by their dotted path ("serving.rollout.canary.minPairs"), as the CRD names them."""
from __future__ import annotations

from typing import Any, Mapping


def lookup(node: Any, path: str) -> Any:
    """The value at `path`, or None where any step is missing or not an object."""
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node
