"""The compression stage: `compress(config) -> StageReport`.

Converts a published version's Keras model to TFLite with the configured method (after optional
magnitude pruning), re-evaluates it with LiteRT on the same held-out split the trainer used, and adds
`model.tflite` to the version: the file first (atomically), then the rewritten manifest. The float32
TFLite model (`model-float32.tflite`) is added first, so that an uncompressed fallback exists which the
TensorFlow-free serving image can load.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from modelops_contracts import manifest as mf
from modelops_contracts.jobconfig import HIGHER_IS_BETTER, JobConfig
from modelops_contracts.report import StageReport

from . import artifacts, conversion, data, export, metrics
from .errors import BadData, CompressionFailed, StageError, StorageError
from .litert import TFLiteModel
from .stage import run_stage

log = logging.getLogger("modelops.compress")
TFLITE_FILE = "model.tflite"
FLOAT32_TFLITE_FILE = "model-float32.tflite"


def compress(config: JobConfig) -> StageReport:
    return run_stage("compress", config, _compress)


def _compress(config: JobConfig) -> StageReport:
    root = config.version_dir
    try:
        manifest = mf.verify(root)
    except mf.ManifestError as e:
        raise StorageError(f"storage: version {config.model.version} at {root} is not usable: {e}") from None
    prepared = data.load(config)
    if prepared.fingerprint != manifest.extra.get("dataFingerprint"):
        raise BadData(f"data: {config.data.uri} with shuffleSeed {config.data.shuffle_seed} is not the data "
                      f"version {config.model.version} was trained on, so its metrics would not compare")
    if config.model.template == "custom":
        data.import_custom_module(config.model.custom_module)   # registers any custom layers before loading
    model = export.load(root)
    before = metrics.evaluate(prepared.task, prepared.y_val, model.predict(prepared.x_val, verbose=0))
    method, sparsity = config.compression.method, config.compression.pruning_sparsity
    float32 = _convert(model, "none", prepared)
    # The uncompressed model in a form the TensorFlow-free serving image loads, published before anything
    # can fail: it is what serves when the compressed model fails or degrades too much (ServeUncompressed).
    float32_file = TFLITE_FILE if method == "none" and sparsity == 0 else FLOAT32_TFLITE_FILE
    _add_file(root, manifest, float32_file, float32, "tfliteFloat32")
    fallback = {"float32File": float32_file}
    try:
        compressed, after, pruned_sparsity = _compressed(model, method, sparsity, float32, prepared)
    except StageError:
        raise   # Terminated (SIGTERM) is not a conversion failure
    except Exception as e:
        first_line = (str(e).strip().splitlines() or [""])[0]
        raise CompressionFailed(f"compression.method {method}: {type(e).__name__}: {first_line}",
                                compression=fallback) from None

    higher = config.metric in HIGHER_IS_BETTER
    summary = {"method": method, "pruningSparsity": sparsity, "float32Bytes": len(float32),
               "compressedBytes": len(compressed), "ratio": round(len(float32) / len(compressed), 3),
               "kerasBytes": (root / export.KERAS_FILE).stat().st_size, "file": TFLITE_FILE,
               "float32File": float32_file, "metric": config.metric, "metricBefore": before[config.metric],
               "metricAfter": after[config.metric],
               "degradation": metrics.degradation(before[config.metric], after[config.metric], higher)}
    if pruned_sparsity is not None:
        summary["measuredSparsity"] = round(pruned_sparsity, 4)
    log.info("%s: %d → %d bytes (%.2f×), %s %.4g → %.4g", method, len(float32), len(compressed),
             summary["ratio"], config.metric, before[config.metric], after[config.metric])
    _add_to_version(root, manifest, compressed, summary, after)
    return StageReport(stage="compress", succeeded=True, version=config.model.version,
                       attempt=config.training.attempt, metric=config.metric, metrics=after,
                       artifact_path=str(root / TFLITE_FILE), compression=summary)


def _compressed(model, method: str, sparsity: float, float32: bytes,
                prepared: data.Prepared) -> tuple[bytes, dict[str, float], float | None]:
    """The compressed TFLite model, its held-out metrics, and the sparsity pruning reached (if it ran)."""
    pruned_sparsity = None
    if sparsity > 0:
        loss = "sparse_categorical_crossentropy" if prepared.task == "classification" else "mse"
        model = conversion.prune(model, sparsity, prepared.x_train, prepared.y_train, loss)
        pruned_sparsity = conversion.sparsity_of(model)
        log.info("pruned Dense kernels to %.1f%% zeros", 100 * pruned_sparsity)
    compressed = float32 if method == "none" and sparsity == 0 else conversion.to_tflite(model, method,
                                                                                         prepared.x_train)
    after = metrics.evaluate(prepared.task, prepared.y_val, TFLiteModel(compressed).predict(prepared.x_val))
    return compressed, after, pruned_sparsity


def _convert(model, method: str, prepared: data.Prepared) -> bytes:
    try:
        return conversion.to_tflite(model, method, prepared.x_train)
    except Exception as e:
        first_line = (str(e).strip().splitlines() or [""])[0]
        raise CompressionFailed(f"TFLite conversion ({method}): {type(e).__name__}: {first_line}") from None


def _add_file(root: Path, manifest: mf.Manifest, name: str, content: bytes, servable: str) -> None:
    """Write one model file into the version (atomically), then the manifest that lists it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=root)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / name)
        manifest.servables[servable] = name
        manifest.add_files(root, [name])
        manifest.write(root)
        artifacts.make_readable(root)
    except OSError as e:
        raise StorageError(f"storage: writing {name} into {root} as {artifacts.identity()}: "
                           f"{e.strerror or e}") from None


def _add_to_version(root: Path, manifest: mf.Manifest, tflite: bytes, summary: dict, after: dict) -> None:
    manifest.extra["compression"] = {**summary, "metricsAfter": after}
    _add_file(root, manifest, TFLITE_FILE, tflite, "tflite")
