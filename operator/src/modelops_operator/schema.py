"""Checking a spec against the CRD's OpenAPI schema where no API server does it (`modelops run`)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CRD_PATH = Path(__file__).resolve().parents[3] / "crds" / "modeldeployments.modelops.io.yaml"


@lru_cache(maxsize=1)
def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def validate_spec(spec: Any) -> list[str]:
    """Every schema violation as 'spec.<path>: <problem>' (types, enums, bounds, patterns, required)."""
    import jsonschema
    validator = jsonschema.Draft7Validator(spec_schema())
    problems = []
    for error in sorted(validator.iter_errors(spec), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in ["spec", *error.absolute_path])
        problems.append(f"{path}: {error.message}")
    return problems
