"""The served model: verify the version directory, pick a runtime, then predict rows.

Lifecycle as in KServe's model class: `load()` sets `ready`; until then (or after a failed
load) `reason` says why the model is not ready, for the log and the readiness endpoints.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from modelops_contracts import manifest as manifest_contract

from .runtimes import LiteRTRuntime, ModelLoadError, Runtime, TensorFlowRuntime

log = logging.getLogger(__name__)


class ServedModel:
    def __init__(self, model_dir: str | Path, name: str, servable: str = "auto"):
        self.model_dir = Path(model_dir)
        self.name = name
        # "auto" prefers the compressed TFLite model; the operator names one explicitly when the
        # compression gate chose the uncompressed model, or when rolling back to such a version.
        self.servable = servable
        self.ready = False
        self.reason = "loading"
        self.manifest: manifest_contract.Manifest | None = None
        self.runtime: Runtime | None = None

    @property
    def version(self) -> str:
        return self.manifest.version if self.manifest else ""

    @property
    def input_width(self) -> int:
        return self.runtime.input_width if self.runtime else 0

    @property
    def output_width(self) -> int:
        return self.runtime.output_width if self.runtime else 0

    def load(self) -> bool:
        try:
            self.manifest = manifest_contract.verify(self.model_dir)
            self.runtime = self._open_runtime(self.manifest)
        except (manifest_contract.ManifestError, ModelLoadError) as e:
            return self._refuse(str(e))
        except Exception as e:  # a corrupt model file fails inside the runtime's own code
            return self._refuse(f"cannot load the model: {type(e).__name__}: {e}")
        self.ready, self.reason = True, ""
        log.info("model %s version %s ready (%s, %d features -> %d outputs)", self.name, self.version,
                 self.runtime.kind, self.input_width, self.output_width)
        return True

    def _refuse(self, reason: str) -> bool:
        self.ready, self.reason, self.runtime = False, reason, None
        log.error("model %s not ready: %s", self.name, reason)
        return False

    def _open_runtime(self, m: manifest_contract.Manifest) -> Runtime:
        wanted = manifest_contract.SERVABLE_KINDS if self.servable == "auto" else (self.servable,)
        kind = next((k for k in wanted if k in m.servables), None)
        if kind is None:
            raise ModelLoadError(f"manifest lists no {' or '.join(wanted)} servable "
                                 f"(it has {', '.join(m.servables) or 'none'})")
        if kind in manifest_contract.TFLITE_KINDS:
            runtime: Runtime = LiteRTRuntime(self.model_dir / m.servables[kind], kind)
        else:
            runtime = TensorFlowRuntime(kind, self.model_dir / m.servables[kind], m.num_features)
        if runtime.input_width != m.num_features:
            raise ModelLoadError(f"model takes {runtime.input_width} features, manifest names {m.num_features}")
        if m.task == "classification" and m.classes and runtime.output_width != len(m.classes):
            raise ModelLoadError(f"model returns {runtime.output_width} outputs, manifest names {len(m.classes)} classes")
        if m.task == "regression" and runtime.output_width != 1:
            raise ModelLoadError(f"regression model returns {runtime.output_width} outputs, expected 1")
        return runtime

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Run float32 rows [n, features] through the model; called from worker threads."""
        return self.runtime.run(rows)
