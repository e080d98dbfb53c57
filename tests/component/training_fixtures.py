"""Helpers for the training-job component tests: job configs in the contract's wire form."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from modelops_contracts.jobconfig import JobConfig

BASE: dict[str, Any] = {
    "apiVersion": "modelops.io/v1alpha1", "kind": "JobConfig", "stage": "train", "metric": "accuracy",
    "model": {"namespace": "ml", "name": "digits", "version": "v1", "template": "mlp-classifier"},
    "data": {"uri": "builtin:digits", "validationSplit": 0.2, "shuffleSeed": 42},
    "training": {"epochs": 3, "batchSize": 32, "learningRate": 0.001},
    "compression": {"method": "none"},
}


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def job_config(storage: Path, **overrides: Any) -> JobConfig:
    raw = merge(BASE, {"storageRoot": str(storage), "reportPath": str(storage / "report.json"), **overrides})
    return JobConfig.from_dict(raw)


def write_config(path: Path, config: JobConfig | dict) -> Path:
    path.write_text(config.to_json() if isinstance(config, JobConfig) else json.dumps(config))
    return path


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
