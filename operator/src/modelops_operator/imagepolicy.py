"""The cluster's image allow-list: which images a ModelDeployment may name for its pods.

The chart sets it (imagePolicy.allowedImages) for both this check and its ValidatingAdmissionPolicy,
which refuses the same resources at `kubectl apply` in the same words; this check holds where that
policy is off or the API server predates it. An entry is a prefix: `registry.example.com/ml/` allows
every image under that path (end entries with `/` or `:`, or `ghcr.io/team` also allows `ghcr.io/team-b/x`).
"""
from __future__ import annotations

from typing import Sequence

from .spec import Spec

# Every image a spec can choose (the operator's own defaults are the administrator's, not the user's).
IMAGE_FIELDS = (("training_image", "training.image"), ("serving_image", "serving.image"))
REASON = "ImageNotAllowed"


def parse_allowed(text: str) -> tuple[str, ...]:
    """`a/, b/` (the chart's MODELOPS_ALLOWED_IMAGES) -> ("a/", "b/"); empty: every image is allowed."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def refusal(spec: Spec, allowed: Sequence[str]) -> str | None:
    """Why the spec may not run, naming the field; None when every image it names is allowed."""
    if not allowed:
        return None
    for attr, path in IMAGE_FIELDS:
        image = getattr(spec, attr)
        if image and not any(image.startswith(prefix) for prefix in allowed):
            return f"spec.{path}: image {image} is not allowed (allowed image prefixes: {', '.join(allowed)})"
    return None
