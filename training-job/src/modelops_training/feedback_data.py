"""Training on what the model learned in production: collected feedback added to the training split.

When the job config names a feedback directory (contracts.feedback segments, written by the serving
replicas), its joined records become extra training rows: deduplicated by prediction id, newest
first up to `maxShare` of the resulting training set. The validation split and the data fingerprint
are the original data's alone, so the gate judges every version on the same held-out rows and
compression still recognises the data. A segment that cannot be read fails the stage naming it;
a record that does not fit this model (other inputs, an unknown class, a non-finite value) is
skipped and counted, since feedback outlives the spec it was collected under.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any, Mapping

import numpy as np
from modelops_contracts import feedback as contract
from modelops_contracts.jobconfig import FeedbackSource, JobConfig

from . import features as feats
from .data import Prepared
from .errors import BadData

log = logging.getLogger("modelops.feedback")


def extend(prepared: Prepared, config: JobConfig) -> tuple[Prepared, dict[str, Any]]:
    """The prepared data with feedback rows added to the training split, and what was added (for the
    version's metrics.json and manifest); unchanged and {} when the config asks for none."""
    source = config.feedback
    if source is None:
        return prepared, {}
    train_rows = prepared.train_rows
    cap = int(source.max_share * train_rows / (1.0 - source.max_share))
    chosen, info = _newest_rows(source, prepared, cap)
    if not chosen:
        log.info("feedback: nothing to add from %s (%s)", source.directory, info)
        return prepared, info
    x_extra = _stack([x for x, _ in chosen], prepared.x_train)
    y_extra = np.asarray([y for _, y in chosen], dtype=prepared.y_train.dtype)
    digest = hashlib.sha256()
    for _, array in feats.named(x_extra):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(np.ascontiguousarray(y_extra).tobytes())
    info["sha256"] = digest.hexdigest()
    log.info("feedback: adding %d rows from %d segments to %d training rows (cap %d at maxShare %.2f)",
             len(chosen), info["segments"], train_rows, cap, source.max_share)
    if prepared.stream is not None:   # streamed records: the feedback is drawn beside them (record_stream.py)
        return dataclasses.replace(prepared, stream=dataclasses.replace(
            prepared.stream, extra_x=x_extra, extra_y=y_extra)), info
    return dataclasses.replace(prepared, x_train=_concat(prepared.x_train, x_extra),
                               y_train=np.concatenate([prepared.y_train, y_extra])), info


def _newest_rows(source: FeedbackSource, prepared: Prepared, cap: int) -> tuple[list, dict[str, Any]]:
    """Up to `cap` rows of joined records, newest segment first (reading stops there: a full feedback
    directory is far larger than the training set may take), each prediction id once; oldest first."""
    rows: list[tuple[Any, Any]] = []
    skipped = {"inputs": 0, "truth": 0}
    seen: set[str] = set()
    segments = records = 0
    labels = {str(c): i for i, c in enumerate(prepared.classes)}
    try:
        paths = [p for p in contract.list_segments(source.directory)
                 if source.written_before is None or contract.written_at(p) < source.written_before]
        for path in reversed(paths):
            if len(rows) >= cap:
                break
            try:
                batch = contract.read_segment(path)
            except FileNotFoundError:
                continue                # pruned under a replica's disk cap since the listing
            segments += 1
            for record in reversed(batch):
                if record.joined and record.prediction_id not in seen:
                    seen.add(record.prediction_id)
                    records += 1
                    rows.extend(reversed(_rows(record, prepared, labels, skipped)))
    except contract.SegmentError as e:
        raise BadData(f"feedback: {e}") from None
    except OSError as e:
        raise BadData(f"feedback.directory: {source.directory}: {e.strerror or e}") from None
    chosen = list(reversed(rows[:cap]))
    return chosen, {"directory": source.directory, "segments": segments, "records": records,
                    "rowsAdded": len(chosen), "cap": cap, "skipped": skipped}


def _rows(record: contract.FeedbackRecord, prepared: Prepared, labels: dict[str, int],
          skipped: dict[str, int]) -> list[tuple[Any, Any]]:
    """(features of one row, encoded target) for each row of the record that fits the model."""
    x = _inputs(record.inputs, prepared.x_train)
    if x is None:
        skipped["inputs"] += record.rows
        return []
    rows = []
    for i, truth in enumerate(record.truth):
        y = _target(truth, prepared.task, labels)
        if y is None:
            skipped["truth"] += 1
            continue
        rows.append(({k: v[i] for k, v in x.items()} if isinstance(x, Mapping) else x[i], y))
    return rows


def _inputs(inputs: Mapping[str, list], like: feats.Features) -> feats.Features | None:
    """The record's inputs as arrays shaped like the training features, or None when they do not fit."""
    try:
        if isinstance(like, Mapping):
            if set(inputs) != set(like):
                return None
            arrays = {k: np.asarray(inputs[k], dtype=like[k].dtype) for k in like}
            fits = all(a.shape[1:] == like[k].shape[1:] for k, a in arrays.items())
        else:
            if len(inputs) != 1:
                return None
            arrays = np.asarray(next(iter(inputs.values())), dtype=like.dtype)
            fits = arrays.shape[1:] == like.shape[1:]
    except (ValueError, TypeError):
        return None
    if not fits or any(a.dtype.kind == "f" and not np.isfinite(a).all() for _, a in feats.named(arrays)):
        return None
    return arrays


def _target(truth: Any, task: str, label_index: dict[str, int]) -> Any:
    if task == "classification":
        return label_index.get(str(truth)) if not isinstance(truth, (list, dict)) else None
    if isinstance(truth, bool) or not isinstance(truth, (int, float)) or not np.isfinite(truth):
        return None
    return float(truth)


def _stack(rows: list, like: feats.Features) -> feats.Features:
    if isinstance(like, Mapping):
        return {k: np.stack([r[k] for r in rows]).astype(like[k].dtype) for k in like}
    return np.stack(rows).astype(like.dtype)


def _concat(a: feats.Features, b: feats.Features) -> feats.Features:
    if isinstance(a, Mapping):
        return {k: np.concatenate([a[k], b[k]]) for k in a}
    return np.concatenate([a, b])
