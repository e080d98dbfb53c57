"""TFRecord data streamed, never loaded whole: one scan checks every record and fixes the split, then tf.data
reads the training records from the files again, sharded per worker.

The scan (`prepare`) reads each file in batches of serialized records: first to count them (the split is
the same seeded permutation of record indices as for any other data, so it needs the count), then to
parse them against the featureSpec. A bad record is named by file, record and feature before training
starts. The scan keeps only what is small: every record's target (one value each), the validation
records (the held-out split the gate and compression measure on), TRAIN_SAMPLE training records drawn
by the split's permutation and kept in its order (shapes, int8 calibration, pruning's fine-tuning: the
very rows in-memory data would give them, spread over every file), and per-column statistics for a
float table.

The fingerprint hashes every record's parsed features and target in file order, then the split, so
training and compression (which both scan) agree exactly when the data and the split are the same.

Training (`training_dataset`) streams the files again: records keep their global index (each file's
offset plus the position in it), the training ones are kept by the split's mask, and their labels are
looked up by index. Under MultiWorkerMirrored tf.data shards it per worker: by FILE when there are at
least as many files as workers (each worker reads only its files), else by DATA (each reads all and
keeps its share of records).

A version retrained on served feedback (`feedback_data.py`) gets the feedback rows in memory beside the
files (`extra_x`, `extra_y`): each example is drawn from the records or the feedback in proportion to
their counts, and the mix is sharded by DATA, since only a file-based source can be split by FILE.
"""
from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from modelops_contracts.jobconfig import JobConfig

from . import features as feats, sources
from .errors import BadConfig, BadData
from .records import message, name_bad_record

BATCH = 256
TRAIN_SAMPLE = 2048
SHUFFLE_BUFFER = 10_000
PARSE_AS = {"float32": "float32", "int64": "int64", "uint8": "int64", "string": "string"}


def _tf():
    from .tf_runtime import tf
    return tf


@dataclass(frozen=True)
class RecordStream:
    """Where the training records are and how to read them; what the scan learned about them."""
    files: tuple[str, ...]
    offsets: tuple[int, ...]       # the global index of each file's first record
    spec: dict                     # the input features (the target left out), as declared
    train_mask: np.ndarray         # per record (global index): True for the training split
    labels: np.ndarray             # per record: the encoded target
    mean: np.ndarray | None        # a single float table's per-column mean and variance over the training split
    variance: np.ndarray | None
    extra_x: "feats.Features | None" = None    # feedback rows trained on beside the records, or None
    extra_y: np.ndarray | None = None

    @property
    def extra_rows(self) -> int:
        return 0 if self.extra_y is None else len(self.extra_y)

    @property
    def train_rows(self) -> int:
        return int(self.train_mask.sum()) + self.extra_rows

    def shard_policy(self, workers: int) -> str:
        return "FILE" if len(self.files) >= workers and not self.extra_rows else "DATA"


def files_of(uri: str) -> list[str]:
    pattern = str(sources.resolve_local_path(uri))
    files = sorted(glob.glob(pattern))
    if not files:
        raise BadData(f"data.uri: no TFRecord file matches {pattern}")
    return files


def check_spec(spec: dict | None, target: str | None, uri: str) -> None:
    if not spec:
        raise BadConfig(f"data.featureSpec: required to read {uri} (the name, dtype and shape of each feature)")
    if target not in spec:
        raise BadConfig(f"data.target: {target!r} must name one of the featureSpec features ({', '.join(spec)})")
    if spec[target]["shape"]:
        raise BadConfig(f"data.featureSpec.{target}.shape: the target is one value per example, use []")
    if len(spec) < 2:
        raise BadConfig(f"data.featureSpec: declares only the target {target!r}; add the input features")


def parse_spec(spec: dict) -> dict:
    tf = _tf()
    return {name: tf.io.FixedLenFeature(s["shape"], getattr(tf, PARSE_AS[s["dtype"]])) for name, s in spec.items()}


def count_records(path: str) -> int:
    tf, n = _tf(), 0
    try:
        for batch in tf.data.TFRecordDataset(path).batch(BATCH):
            n += int(batch.shape[0])
    except tf.errors.DataLossError as e:
        raise BadData(f"data: {Path(path).name} record {n} onwards: not a TFRecord file or corrupt "
                      f"({message(e)})") from None
    return n


def parsed_batches(path: str, features: dict):
    """(first record index, {feature: array}) for each batch of one file; a bad record is named."""
    tf, name, start = _tf(), Path(path).name, 0
    for batch in tf.data.TFRecordDataset(path).batch(BATCH):
        try:
            parsed = tf.io.parse_example(batch, features)
        except tf.errors.InvalidArgumentError as e:
            name_bad_record(name, batch, features, start)
            raise BadData(f"data: {name} records {start}..{start + int(batch.shape[0]) - 1}: {message(e)}") from None
        yield start, {k: v.numpy() for k, v in parsed.items()}
        start += int(batch.shape[0])


def typed(values: np.ndarray, dtype: str, feature: str, where: str) -> np.ndarray:
    """Values as their declared dtype; out-of-range or non-finite ones are named by file and record."""
    flat = values.reshape(len(values), -1)
    if dtype == "uint8":
        bad = np.argwhere((flat < 0) | (flat > 255))
        if len(bad):
            raise BadData(f"data: feature {feature!r} in {where} record {bad[0][0]}: {flat[tuple(bad[0])]} is "
                          f"outside uint8's 0..255")
        return values.astype(np.uint8)
    if dtype == "float32":
        bad = np.argwhere(~np.isfinite(flat))
        if len(bad):
            raise BadData(f"data: feature {feature!r} in {where} record {bad[0][0]} is NaN or infinite")
    if dtype == "string":
        return np.char.decode(values.astype(bytes), "utf-8", errors="replace")
    return values


def prepare(config: JobConfig, task: str):
    """The scan: a `Prepared` whose training split streams (its `stream`), the rest in memory."""
    from . import data
    spec, target = config.data.feature_spec, config.data.target
    check_spec(spec, target, config.data.uri)
    files = files_of(config.data.uri)
    counts = [count_records(f) for f in files]
    n = sum(counts)
    if not n:
        raise BadData(f"data.uri: {', '.join(Path(f).name for f in files)} hold no records")
    offsets = [int(o) for o in np.cumsum([0, *counts[:-1]])]
    try:
        order, n_val = data.split(n, config.data.validation_split, config.data.shuffle_seed, Path(files[0]).name)
    except BadData:
        for _ in _checked_batches(files, offsets, spec):   # a bad record is the better answer than "too few"
            pass
        raise
    scan = _Scan(spec, target, order[:n_val], order[n_val:n_val + TRAIN_SAMPLE], n)
    for first, arrays in _checked_batches(files, offsets, spec):
        scan.add(first, arrays)
    return scan.finish(task, files, offsets, Path(files[0]).name)


def _checked_batches(files: list[str], offsets: list[int], spec: dict):
    """(global index of the first record, {feature: typed array}) for each batch of every file."""
    for path, offset in zip(files, offsets):
        for start, arrays in parsed_batches(path, parse_spec(spec)):
            yield offset + start, {k: typed(v, spec[k]["dtype"], k, Path(path).name) for k, v in arrays.items()}


class _Scan:
    """What one pass over the records keeps (see the module's docstring) and the fingerprint it hashes."""

    def __init__(self, spec: dict, target: str, val_index: np.ndarray, sample_index: np.ndarray, n: int):
        self.inputs = sorted(k for k in spec if k != target)
        self.spec, self.target, self.n = spec, target, n
        self.is_val = np.zeros(n, bool)
        self.is_val[val_index] = True
        self.is_sample = np.zeros(n, bool)
        self.is_sample[sample_index] = True
        self.sample_index = sample_index
        self.targets: list[np.ndarray] = []
        self.val: dict[str, list] = {k: [] for k in self.inputs}
        self.sample: dict[str, list] = {k: [] for k in self.inputs}
        self.sums = None
        self.digest = hashlib.sha256(b"tfrecord-stream\0")

    def add(self, first: int, arrays: dict[str, np.ndarray]) -> None:
        index = np.arange(first, first + len(arrays[self.target]))
        for k in (*self.inputs, self.target):
            self.digest.update(np.ascontiguousarray(arrays[k]).tobytes() if arrays[k].dtype.kind != "U"
                               else "\0".join(arrays[k]).encode())
        self.targets.append(arrays[self.target])
        val, train, take = self.is_val[index], ~self.is_val[index], self.is_sample[index]
        for k in self.inputs:
            self.val[k].append(arrays[k][val])
            self.sample[k].append(arrays[k][take])
        if len(self.inputs) == 1 and arrays[self.inputs[0]].ndim == 2 and self.spec[self.inputs[0]]["dtype"] == "float32":
            rows = arrays[self.inputs[0]][train].astype(np.float64)
            sums = np.stack([rows.sum(axis=0), (rows ** 2).sum(axis=0)])
            self.sums = sums if self.sums is None else self.sums + sums

    def finish(self, task: str, files: list[str], offsets: list[int], source: str):
        from . import data
        raw_targets = np.concatenate(self.targets)
        labels, classes = data.encode_target(raw_targets, task, source)
        self.digest.update(self.is_val.tobytes())
        single = len(self.inputs) == 1
        form = (lambda parts: np.concatenate(parts[self.inputs[0]])) if single else \
            (lambda parts: {k: np.concatenate(parts[k]) for k in self.inputs})
        # The sample was read in file order; the split's permutation order is what in-memory data has.
        rank = np.searchsorted(np.sort(self.sample_index), self.sample_index)
        x_val = form(self.val)
        x_sample = feats.take(form(self.sample), rank)
        names = [f"{self.inputs[0]}_{i}" for i in range(x_val.shape[1])] if self.sums is not None else []
        self.digest.update("\0".join(names).encode())
        self.digest.update("\0".join(f"{k}:{self.spec[k]['dtype']}:{self.spec[k]['shape']}" for k in self.inputs)
                           .encode())
        train_rows = self.n - int(self.is_val.sum())
        mean = variance = None
        if self.sums is not None:
            mean = (self.sums[0] / train_rows).astype(np.float32)
            variance = np.maximum(self.sums[1] / train_rows - mean.astype(np.float64) ** 2, 0).astype(np.float32)
        stream = RecordStream(files=tuple(files), offsets=tuple(offsets),
                              spec={k: self.spec[k] for k in self.inputs}, train_mask=~self.is_val,
                              labels=labels, mean=mean, variance=variance)
        return data.Prepared(task=task, feature_names=names, classes=classes, x_train=x_sample,
                             y_train=labels[self.sample_index], x_val=x_val,
                             y_val=labels[self.is_val], fingerprint=self.digest.hexdigest(), stream=stream)


def training_dataset(stream: RecordStream, global_batch_size: int, seed: int, workers: int) -> "tf.data.Dataset":
    """Endless full global batches of the training records, read from the files (see the module docstring)."""
    tf = _tf()
    features = parse_spec(stream.spec)
    mask, labels = tf.constant(stream.train_mask), tf.constant(stream.labels)
    names = sorted(stream.spec)

    def records(path, offset):
        return tf.data.TFRecordDataset(path).enumerate(start=offset)

    def parse(index, serialized):
        parsed = tf.io.parse_example(serialized, features)
        x = {k: tf.cast(parsed[k], tf.uint8) if stream.spec[k]["dtype"] == "uint8" else parsed[k] for k in names}
        return (x[names[0]] if len(names) == 1 else x), tf.gather(labels, index)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, stream.shard_policy(workers))
    options.deterministic = True
    files = tf.data.Dataset.from_tensor_slices((list(stream.files), np.array(stream.offsets, np.int64)))
    kept = (files.interleave(records, cycle_length=min(len(stream.files), 4))
            .filter(lambda index, _: tf.gather(mask, index))
            .shuffle(min(SHUFFLE_BUFFER, stream.train_rows), seed=seed, reshuffle_each_iteration=True)
            .repeat())
    if stream.extra_rows:
        examples = kept.batch(BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
        feedback = tf.data.Dataset.from_tensor_slices((stream.extra_x, stream.extra_y)).shuffle(
            stream.extra_rows, seed=seed, reshuffle_each_iteration=True).repeat()
        share = stream.extra_rows / stream.train_rows
        batches = (tf.data.Dataset.sample_from_datasets([examples, feedback], weights=[1 - share, share], seed=seed)
                   .batch(global_batch_size, drop_remainder=True))
    else:   # parsed a batch at a time: the records' fast path
        batches = kept.batch(global_batch_size, drop_remainder=True).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)
