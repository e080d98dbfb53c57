"""The served model: verify the version directory, pick a runtime, then predict batches.

Lifecycle as in KServe's model class: `load()` sets `ready`; until then (or after a failed
load) `reason` says why the model is not ready, for the log and the readiness endpoints.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from modelops_contracts import manifest as manifest_contract
from modelops_contracts.signature import Signature

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
        # What the model takes and returns: the manifest's (derived for manifests from before the field),
        # read once at load because every request is checked against it.
        self.signature: Signature | None = None

    @property
    def version(self) -> str:
        return self.manifest.version if self.manifest else ""

    def load(self) -> bool:
        try:
            self.manifest = manifest_contract.verify(self.model_dir)
            self.signature = self.manifest.effective_signature
            self.runtime = self._open_runtime(self.manifest)
        except (manifest_contract.ManifestError, ModelLoadError) as e:
            return self._refuse(str(e))
        except Exception as e:  # a corrupt model file fails inside the runtime's own code
            return self._refuse(f"cannot load the model: {type(e).__name__}: {e}")
        self.ready, self.reason = True, ""
        sig = self.signature
        log.info("model %s version %s ready (%s; inputs %s; outputs %s)", self.name, self.version, self.runtime.kind,
                 ", ".join(t.describe() for t in sig.inputs), ", ".join(t.describe() for t in sig.outputs))
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
        signature = m.effective_signature
        if signature.is_tabular and m.feature_names and signature.inputs[0].shape[1] != m.num_features:
            raise ModelLoadError(f"signature input {signature.inputs[0].describe()} does not fit the manifest's "
                                 f"{m.num_features} featureNames")
        if kind in manifest_contract.TFLITE_KINDS:
            return LiteRTRuntime(self.model_dir / m.servables[kind], signature, kind)
        return TensorFlowRuntime(kind, self.model_dir / m.servables[kind], signature)

    def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One array per signature input in, one per output back; called from worker threads."""
        return self.runtime.run(inputs)
