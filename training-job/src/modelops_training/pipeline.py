"""The tf.data input pipeline: shuffled, repeated, batched, prefetched, sharded across workers.

In-memory data is sharded by element; TFRecord data streams from its files (`record_stream.py`).
"""
from __future__ import annotations

import numpy as np

from . import features, record_stream
from .tf_runtime import tf


def for_training(prepared, global_batch_size: int, seed: int, workers: int) -> "tf.data.Dataset":
    if prepared.stream is not None:
        return record_stream.training_dataset(prepared.stream, global_batch_size, seed, workers)
    return training_dataset(prepared.x_train, prepared.y_train, global_batch_size, seed)


def describe_sharding(prepared, workers: int) -> str:
    """For the training log: where the training examples come from and how workers split them."""
    stream = prepared.stream
    if stream is None:
        return "from memory, sharded by DATA" if workers > 1 else "from memory"
    policy = stream.shard_policy(workers)
    if stream.extra_rows:
        why = "the feedback rows are in memory"
    elif policy == "FILE":
        why = f"{len(stream.files)} files for {workers} workers"
    else:
        why = f"fewer files ({len(stream.files)}) than workers ({workers})"
    return (f"streamed from {len(stream.files)} TFRecord files" +
            (f" with {stream.extra_rows} feedback rows drawn beside them" if stream.extra_rows else "") +
            (f", sharded by {policy} ({why})" if workers > 1 else ""))


def training_dataset(x: features.Features, y: np.ndarray, global_batch_size: int, seed: int) -> "tf.data.Dataset":
    """An endless stream of full global batches; fit() bounds each epoch with `steps_per_epoch`.

    Repeating and dropping the remainder gives every worker the same number of steps per epoch,
    which MultiWorkerMirroredStrategy needs (a worker short of a batch would stall the all-reduce).
    The data comes from memory, not files, so sharding must be by element (DATA), set explicitly
    rather than left to AUTO's file-then-data guess.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(features.count(x), seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(global_batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
            .with_options(options))


def validation_dataset(x: features.Features, y: np.ndarray, global_batch_size: int) -> "tf.data.Dataset":
    """The held-out split, for the validation loss and metric beside the training ones in each epoch.

    Repeated and cut to full batches like the training stream, so that every worker runs the same
    `validation_steps(...)` steps (a worker with fewer would stall the others' all-reduce).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (tf.data.Dataset.from_tensor_slices((x, y)).repeat()
            .batch(global_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options))


def validation_steps(num_rows: int, global_batch_size: int) -> int:
    return max(1, -(-num_rows // global_batch_size))


def steps_per_epoch(num_rows: int, global_batch_size: int) -> int:
    return max(1, num_rows // global_batch_size)
