"""Sample ModelDeployments for the operator's unit tests."""
import copy

import yaml
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def example(name: str) -> dict:
    return yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())


def body(spec: dict | None = None, *, name: str = "digits", namespace: str = "ml", generation: int = 1,
         status: dict | None = None) -> dict:
    return {"apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace, "uid": "0123456789abcdef", "generation": generation},
            "spec": copy.deepcopy(spec if spec is not None else example("digits-classifier")["spec"]),
            "status": copy.deepcopy(status or {})}
