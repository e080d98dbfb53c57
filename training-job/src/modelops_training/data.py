"""From a job config to the arrays a model trains on: parse, validate, split, fingerprint.

Pure NumPy; the tf.data pipeline lives in `pipeline.py`. Every bad-data message names the
column or row at fault, because it ends up as the one line a user sees in `kubectl get md`.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import io
from dataclasses import dataclass

import numpy as np
from modelops_contracts.jobconfig import JobConfig

from . import features as feats, formats, record_stream, records, sources
from .errors import BadConfig, BadData
from .features import Features

CLASSIFICATION_METRICS = frozenset({"accuracy", "auc", "logloss"})
CLASSIFICATION_TEMPLATES = frozenset({"mlp-classifier", "cnn-classifier"})
# builtin:linear — y = LINEAR_INTERCEPT + LINEAR_SLOPE·x + noise, so tests can check what a model learned.
LINEAR_INTERCEPT = 3.0
LINEAR_SLOPE = 2.0
LINEAR_ROWS = 1000
LINEAR_NOISE = 0.5


@dataclass(frozen=True)
class Table:
    """Raw examples: the features (float32 table columns, N-d arrays, or named arrays for several
    inputs) and the target as read (numbers or labels). feature_names names a table's columns only."""
    features: Features
    target: np.ndarray
    feature_names: list[str]
    source: str


@dataclass(frozen=True)
class Prepared:
    """The train/validation split, ready for a model."""
    task: str                      # regression | classification
    feature_names: list[str]
    classes: list                  # classification: label of each output unit; regression: []
    x_train: Features
    y_train: np.ndarray
    x_val: Features
    y_val: np.ndarray
    fingerprint: str               # sha256 of the data and split, so compression can check it sees the same
    # TFRecord data: the training split streams from the files and x_train/y_train hold only its first
    # examples (record_stream.py); None when every split is in memory.
    stream: "record_stream.RecordStream | None" = None

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def train_rows(self) -> int:
        return self.stream.train_rows if self.stream is not None else feats.count(self.x_train)

    @property
    def val_rows(self) -> int:
        return feats.count(self.x_val)


def task_of(config: JobConfig) -> str:
    """Regression or classification, from the template (or, for custom models, from the metric)."""
    template = config.model.template
    if template == "custom":
        return "classification" if config.metric in CLASSIFICATION_METRICS else "regression"
    task = "classification" if template in CLASSIFICATION_TEMPLATES else "regression"
    if (config.metric in CLASSIFICATION_METRICS) != (task == "classification"):
        raise BadConfig(f"metric: {config.metric} does not fit template {template} ({task})")
    return task


def load(config: JobConfig) -> Prepared:
    task = task_of(config)
    if not _custom_loader(config) and records.kind(config.data.uri, config.data.feature_spec) == "tfrecord":
        return record_stream.prepare(config, task)
    table = _load_table(config)
    return prepare(table, task, config.data.validation_split, config.data.shuffle_seed)


def _custom_loader(config: JobConfig):
    """A custom module's `load_data`, which takes precedence over `data.uri`; None without one."""
    if config.model.template != "custom":
        return None
    return getattr(import_custom_module(config.model.custom_module), "load_data", None)


def _load_table(config: JobConfig) -> Table:
    if (load_data := _custom_loader(config)) is not None:
        return _table_from_custom(load_data(config), config.model.custom_module)
    builtin = sources.builtin_name(config.data.uri)
    if builtin == "linear":
        return linear_table()
    if builtin == "digits-images":
        return formats.digits_images()
    if formats.is_tensor_format(config.data.uri, config.data.feature_spec):
        return formats.load(config)
    raw, label = sources.read_bytes(config.data.uri, config.data.s3_endpoint)
    return parse_csv(raw, label, config.data.target, config.data.features)


def import_custom_module(path: str):
    try:
        return importlib.import_module(path)
    except ImportError as e:
        missing = getattr(e, "name", None)
        if missing and not (path == missing or path.startswith(f"{missing}.")):
            # The module is there; something it imports is not.
            raise BadConfig(f"model.customModule: {path!r} imports {missing!r}, which the training image lacks: "
                            f"install it in your image (FROM the modelops training image)") from None
        raise BadConfig(f"model.customModule: cannot import {path!r} in the training image ({e}): build an image "
                        f"FROM the modelops training image with your package installed and set "
                        f"spec.training.image to it (docs/training.md)") from None


def _table_from_custom(result, module: str) -> Table:
    """(features, target, feature_names): a float table with its column names, or N-d features (one
    array, or a dict of arrays named as the model's inputs) with feature_names empty."""
    try:
        x, y, names = result
        x = {str(k): np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else np.asarray(x)
        y = np.asarray(y)
    except (TypeError, ValueError) as e:
        raise BadData(f"{module}.load_data: expected (features, target, feature_names) arrays: {e}") from None
    names = [str(n) for n in names]
    shapes = {k: a.shape for k, a in feats.named(x)}
    if y.ndim != 1 or any(len(s) < 2 or s[0] != len(y) for s in shapes.values()) or (
            names and not (feats.is_table(x) and x.shape[1] == len(names))):
        raise BadData(f"{module}.load_data: shapes do not line up: features {shapes}, target {y.shape}, "
                      f"{len(names)} feature names")
    for name, array in feats.named(x):
        if array.dtype.kind not in "fiub":
            raise BadData(f"{module}.load_data: features {name or ''} have dtype {array.dtype}, not numbers")
    if feats.is_table(x):
        x = x.astype(np.float32)
        _check_finite(x, names or [f"column {i}" for i in range(x.shape[1])], module)
    return Table(features=x, target=y, feature_names=names, source=module)


def linear_table() -> Table:
    rng = np.random.default_rng(0)
    x = rng.uniform(-5.0, 5.0, size=(LINEAR_ROWS, 1)).astype(np.float32)
    y = LINEAR_INTERCEPT + LINEAR_SLOPE * x[:, 0] + rng.normal(0.0, LINEAR_NOISE, size=LINEAR_ROWS)
    return Table(features=x, target=y.astype(np.float32), feature_names=["x"], source="builtin:linear")


def parse_csv(raw: bytes, label: str, target: str | None, features: tuple[str, ...] | None) -> Table:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadData(f"data.uri: {label} is not UTF-8 text") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        raise BadData(f"data.uri: {label} is empty")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    target = target or header[-1]
    names = formats.select(header, target, features, label, "column")
    for i, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise BadData(f"data.uri: {label} line {i} has {len(row)} fields, the header has {len(header)}")
    cells = np.array(body, dtype=str).reshape(len(body), len(header))
    index = {h: j for j, h in enumerate(header)}
    x = _numeric(cells[:, [index[n] for n in names]], names, label)
    return Table(features=x, target=cells[:, index[target]], feature_names=names, source=label)


def _numeric(cells: np.ndarray, names: list[str], label: str) -> np.ndarray:
    try:
        values = np.char.strip(cells).astype(np.float32)
    except ValueError:
        for (r, c), cell in np.ndenumerate(cells):
            try:
                float(cell)
            except ValueError:
                raise BadData(f"data: column {names[c]!r} in {label} line {r + 2} is not a number: "
                              f"{cell.strip()[:40]!r}") from None
        raise
    _check_finite(values, names, label)
    return values


def _check_finite(values: np.ndarray, names: list[str], label: str) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        r, c = bad[0]
        raise BadData(f"data: column {names[c]!r} in {label} line {r + 2} is {values[r, c]} (NaN or infinite)")


def split(n: int, validation_split: float, seed: int, source: str) -> tuple[np.ndarray, int]:
    """The seeded permutation of the n examples and how many of its first ones are the validation split."""
    n_val = int(round(n * validation_split))
    if n_val < 1 or n - n_val < 2:
        raise BadData(f"data: {n} rows in {source} are too few for validationSplit {validation_split} "
                      f"(need at least 2 training rows and 1 validation row)")
    return np.random.default_rng(seed).permutation(n), n_val


def prepare(table: Table, task: str, validation_split: float, seed: int) -> Prepared:
    order, n_val = split(feats.count(table.features), validation_split, seed, table.source)
    y, classes = encode_target(table.target, task, table.source)
    val, train = order[:n_val], order[n_val:]
    digest = hashlib.sha256()
    parts = [a[order] for _, a in feats.named(table.features)] + [y[order], "\0".join(table.feature_names).encode()]
    if not feats.is_table(table.features):   # a table's fingerprint stays what it was before N-d data existed
        parts.append("\0".join(f"{k}:{a.dtype}:{a.shape[1:]}" for k, a in feats.named(table.features)).encode())
    for part in parts:
        digest.update(part if isinstance(part, bytes) else np.ascontiguousarray(part).tobytes())
    return Prepared(task=task, feature_names=table.feature_names, classes=classes,
                    x_train=feats.take(table.features, train), y_train=y[train],
                    x_val=feats.take(table.features, val), y_val=y[val], fingerprint=digest.hexdigest())


def encode_target(target: np.ndarray, task: str, source: str) -> tuple[np.ndarray, list]:
    """The target as the model learns it (float32 values, or int32 class indices) and the class labels."""
    raw = np.char.strip(target) if target.dtype.kind == "U" else target
    numeric = _as_float(raw)
    if task == "regression":
        if numeric is None:
            raise BadData(f"data.target: the target in {source} has non-numeric values (regression needs numbers)")
        _check_finite(numeric[:, None], ["target"], source)
        return numeric.astype(np.float32), []
    labels = raw if numeric is None else numeric
    if numeric is not None:
        _check_finite(numeric[:, None], ["target"], source)
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise BadData(f"data.target: classification needs at least 2 classes, {source} has {len(classes)}")
    as_python = [int(c) if numeric is not None and float(c).is_integer() else c.item() for c in classes]
    return y.astype(np.int32), as_python


def _as_float(values: np.ndarray) -> np.ndarray | None:
    try:
        return values.astype(np.float64)
    except ValueError:
        return None
