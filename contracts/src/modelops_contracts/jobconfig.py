"""The job config: what the operator (or `modelops run`) hands a training or compression pod.

The pod never reads the ModelDeployment itself. The operator renders this config into a
ConfigMap mounted at `DEFAULT_CONFIG_PATH`; the trainer parses it with `JobConfig.from_dict`.
Both directions go through this module, so a field cannot exist on one side only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import API_VERSION

KIND = "JobConfig"
DEFAULT_CONFIG_PATH = "/etc/modelops/job.json"
DEFAULT_REPORT_PATH = "/dev/termination-log"

STAGES = ("train", "compress")
TEMPLATES = ("linear-regression", "mlp-regressor", "mlp-classifier", "cnn-classifier", "custom")
STRATEGIES = ("OneDevice", "Mirrored", "MultiWorkerMirrored")
PRECISIONS = ("float32", "mixed_float16")
METRICS = ("mse", "mae", "r2", "accuracy", "auc", "logloss")
# Metrics where a larger value is better; the others are errors to minimise.
HIGHER_IS_BETTER = frozenset({"r2", "accuracy", "auc"})
COMPRESSION_METHODS = ("none", "float16", "dynamic-range", "int8")


class ConfigError(ValueError):
    """The job config is invalid; the message names the offending field."""


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] is None:
        raise ConfigError(f"{where}.{key}: required")
    return mapping[key]


def _one_of(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _number(value: Any, where: str, *, low: float | None = None, high: float | None = None,
            integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if integer and int(value) != value:
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{where}: {value!r} is below the minimum {low}")
    if high is not None and value > high:
        raise ConfigError(f"{where}: {value!r} is above the maximum {high}")
    return int(value) if integer else float(value)


FEATURE_DTYPES = ("float32", "int64", "uint8", "string")


def _feature_spec(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise ConfigError("data.featureSpec: expected a map of feature name -> {dtype, shape}")
    out = {}
    for name, entry in value.items():
        where = f"data.featureSpec.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected {{dtype, shape}}")
        dtype = _one_of(entry.get("dtype"), FEATURE_DTYPES, f"{where}.dtype")
        shape = entry.get("shape", [])
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                                  for n in shape):
            raise ConfigError(f"{where}.shape: expected a list of positive sizes ([] for a scalar), got {shape!r}")
        out[str(name)] = {"dtype": dtype, "shape": list(shape)}
    return out


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected an object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class ModelRef:
    """Which model, which version, which architecture."""
    namespace: str
    name: str
    version: str
    template: str
    custom_module: str | None = None
    # Template arguments (e.g. hiddenUnits, dropout); passed through to build_model.
    params: dict[str, Any] = field(default_factory=dict)
    # The ModelDeployment's uid: part of the version directory, so a re-created resource of the
    # same name never replaces, restores into or deletes its predecessor's versions. None: the
    # layout without it (`modelops run`, and versions an operator before 0.2 started).
    uid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelRef":
        template = _one_of(_require(d, "template", "model"), TEMPLATES, "model.template")
        custom = d.get("customModule")
        if template == "custom" and not custom:
            raise ConfigError("model.customModule: required when model.template is custom")
        params = dict(_mapping(d.get("params") or {}, "model.params"))
        return cls(namespace=str(_require(d, "namespace", "model")), name=str(_require(d, "name", "model")),
                   version=str(_require(d, "version", "model")), template=template,
                   custom_module=custom, params=params, uid=d.get("uid") or None)


@dataclass(frozen=True)
class DataSpec:
    """Where the data is and how to split it."""
    uri: str
    target: str | None = None
    features: tuple[str, ...] | None = None
    validation_split: float = 0.2
    shuffle_seed: int = 42
    s3_endpoint: str | None = None
    # TFRecord: every feature of the tf.train.Example to parse (target included); image directory: the one
    # image input (its shape is the size images are resized to). name -> {"dtype": str, "shape": [int, ...]}
    feature_spec: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DataSpec":
        features = d.get("features")
        if features is not None and (not isinstance(features, list) or not all(isinstance(f, str) for f in features)):
            raise ConfigError("data.features: expected a list of column names")
        return cls(uri=str(_require(d, "uri", "data")), target=d.get("target"),
                   features=tuple(features) if features else None,
                   validation_split=_number(d.get("validationSplit", 0.2), "data.validationSplit", low=0.01, high=0.9),
                   shuffle_seed=_number(d.get("shuffleSeed", 42), "data.shuffleSeed", low=0, integer=True),
                   s3_endpoint=d.get("s3Endpoint"), feature_spec=_feature_spec(d.get("featureSpec")))


@dataclass(frozen=True)
class TrainingSpec:
    """How to train: distribution strategy, hyperparameters, and which attempt this is."""
    strategy: str = "OneDevice"
    workers: int = 1
    gpus_per_worker: int = 0
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 0.001
    seed: int = 0
    attempt: int = 1
    precision: str = "float32"
    jit_compile: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainingSpec":
        strategy = _one_of(d.get("strategy", "OneDevice"), STRATEGIES, "training.strategy")
        workers = _number(d.get("workers", 1), "training.workers", low=1, high=64, integer=True)
        if workers > 1 and strategy != "MultiWorkerMirrored":
            raise ConfigError("training.workers: more than one worker needs strategy MultiWorkerMirrored")
        return cls(strategy=strategy, workers=workers,
                   gpus_per_worker=_number(d.get("gpusPerWorker", 0), "training.gpusPerWorker", low=0, high=16, integer=True),
                   epochs=_number(d.get("epochs", 10), "training.epochs", low=1, high=100000, integer=True),
                   batch_size=_number(d.get("batchSize", 32), "training.batchSize", low=1, high=1 << 20, integer=True),
                   learning_rate=_number(d.get("learningRate", 0.001), "training.learningRate", low=1e-9, high=10),
                   seed=_number(d.get("seed", 0), "training.seed", low=0, integer=True),
                   attempt=_number(d.get("attempt", 1), "training.attempt", low=1, integer=True),
                   precision=_one_of(d.get("precision", "float32"), PRECISIONS, "training.precision"),
                   jit_compile=_boolean(d.get("jitCompile", False), "training.jitCompile"))


@dataclass(frozen=True)
class CompressionSpec:
    method: str = "none"
    pruning_sparsity: float = 0.0  # 0 disables magnitude pruning

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CompressionSpec":
        return cls(method=_one_of(d.get("method", "none"), COMPRESSION_METHODS, "compression.method"),
                   pruning_sparsity=_number(d.get("pruningSparsity", 0.0), "compression.pruningSparsity", low=0.0, high=0.95))


@dataclass(frozen=True)
class FeedbackSource:
    """Collected feedback to add to the training data (contracts.feedback segments), at most `max_share`
    of the training rows; the validation split is drawn from the original data alone, as without it."""
    directory: str
    max_share: float = 0.2
    # Unix milliseconds: only segments written before it. Replicas keep writing while a job trains, and
    # every worker of a multi-worker job must read the same rows (or they run different step counts).
    written_before: int | None = None

    @classmethod
    def from_dict(cls, d: Any) -> "FeedbackSource | None":
        if d is None:
            return None
        d = _mapping(d, "feedback")
        directory = _require(d, "directory", "feedback")
        if not isinstance(directory, str) or not directory:
            raise ConfigError(f"feedback.directory: expected a path, got {directory!r}")
        before = d.get("writtenBefore")
        return cls(directory=directory,
                   max_share=_number(d.get("maxShare", 0.2), "feedback.maxShare", low=0.01, high=0.9),
                   written_before=None if before is None else _number(before, "feedback.writtenBefore", low=0,
                                                                       integer=True))

    def to_dict(self) -> dict[str, Any]:
        return {"directory": self.directory, "maxShare": self.max_share,
                **({"writtenBefore": self.written_before} if self.written_before is not None else {})}


@dataclass(frozen=True)
class JobConfig:
    """Everything one training or compression pod needs, and nothing it must look up."""
    stage: str
    model: ModelRef
    data: DataSpec
    training: TrainingSpec
    metric: str
    compression: CompressionSpec
    # Local path of the storage root as the pod sees it (pvc:// already resolved to a mount).
    storage_root: str
    report_path: str = DEFAULT_REPORT_PATH
    # None: train on `data` alone (the default).
    feedback: FeedbackSource | None = None

    @property
    def version_dir(self) -> Path:
        return version_dir(self.storage_root, self.model.namespace, self.model.name, self.model.version,
                           self.model.uid)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "JobConfig":
        d = _mapping(d, "config")
        if d.get("apiVersion") != API_VERSION or d.get("kind") != KIND:
            raise ConfigError(f"apiVersion/kind: expected {API_VERSION} {KIND}, got "
                              f"{d.get('apiVersion')!r} {d.get('kind')!r}")
        metric = _one_of(_require(d, "metric", "config"), METRICS, "metric")
        return cls(stage=_one_of(_require(d, "stage", "config"), STAGES, "stage"),
                   model=ModelRef.from_dict(_mapping(_require(d, "model", "config"), "model")),
                   data=DataSpec.from_dict(_mapping(_require(d, "data", "config"), "data")),
                   training=TrainingSpec.from_dict(_mapping(d.get("training") or {}, "training")),
                   metric=metric,
                   compression=CompressionSpec.from_dict(_mapping(d.get("compression") or {}, "compression")),
                   storage_root=str(_require(d, "storageRoot", "config")),
                   report_path=str(d.get("reportPath") or DEFAULT_REPORT_PATH),
                   feedback=FeedbackSource.from_dict(d.get("feedback")))

    def to_dict(self) -> dict[str, Any]:
        """The wire form (camelCase), the exact inverse of from_dict."""
        m, dt, t, c = self.model, self.data, self.training, self.compression
        return {
            "apiVersion": API_VERSION, "kind": KIND, "stage": self.stage, "metric": self.metric,
            "model": {"namespace": m.namespace, "name": m.name, "version": m.version, "template": m.template,
                      "customModule": m.custom_module, "params": dict(m.params), "uid": m.uid},
            "data": {"uri": dt.uri, "target": dt.target, "features": list(dt.features) if dt.features else None,
                     "validationSplit": dt.validation_split, "shuffleSeed": dt.shuffle_seed,
                     "s3Endpoint": dt.s3_endpoint, "featureSpec": dt.feature_spec},
            "training": {"strategy": t.strategy, "workers": t.workers, "gpusPerWorker": t.gpus_per_worker,
                         "epochs": t.epochs, "batchSize": t.batch_size, "learningRate": t.learning_rate,
                         "seed": t.seed, "attempt": t.attempt, "precision": t.precision, "jitCompile": t.jit_compile},
            "compression": {"method": c.method, "pruningSparsity": c.pruning_sparsity},
            "storageRoot": self.storage_root, "reportPath": self.report_path,
            # Left out when off, so configs (and what hashes them) without feedback stay as they were.
            **({"feedback": self.feedback.to_dict()} if self.feedback else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def load(path: str | Path) -> JobConfig:
    """Read and validate a job config file (JSON; YAML is accepted as a superset when PyYAML is present)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"config file {path}: {e.strerror or e}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"config file {path}: not valid JSON") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path}: not valid JSON or YAML ({e})") from None
    return JobConfig.from_dict(raw)


def version_dir(storage_root: str | Path, namespace: str, name: str, version: str, uid: str | None = None) -> Path:
    """The artifact layout: <storage>/<namespace>/<name>/<uid>/<version>/ (without uid: .../<name>/<version>/)."""
    return Path(storage_root) / namespace / name / (uid or "") / version

