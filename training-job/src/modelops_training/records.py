"""TFRecord files of `tf.train.Example` and image directories, read with tf.data against the declared
`data.featureSpec`.

TFRecord: `data.uri` is a `.tfrecord`/`.tfrecords` file or a glob of shards (local or pvc://); every
feature is parsed as its declared dtype and shape, `data.target` names the scalar target feature. The
records stream (`record_stream.py`); a record that does not parse is named by file, record index and
TF's message (which names the feature), by the helpers here. Image directory: one sub-folder per class
of PNG/JPEG files, decoded to the declared [height, width, channels] and resized; a file that does not
decode is named. The decoded images are then split and fingerprinted like any other data (in memory).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from modelops_contracts.jobconfig import JobConfig

from . import sources
from .errors import BadConfig, BadData

RECORD_SUFFIXES = (".tfrecord", ".tfrecords")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def kind(uri: str, feature_spec: dict | None) -> str | None:
    """"tfrecord", "images" (an existing local directory, with a featureSpec: without one a directory is
    a mistaken path, refused as such by the CSV reader), or None; only local and pvc:// paths qualify."""
    if uri.startswith(("s3://", "builtin:")):
        return None
    if uri.endswith(RECORD_SUFFIXES) or any(f"{s}-" in uri or f"{s}*" in uri for s in RECORD_SUFFIXES):
        return "tfrecord"
    if not feature_spec:
        return None
    try:
        return "images" if sources.resolve_local_path(uri).is_dir() else None
    except BadConfig:
        return None


def load(config: JobConfig):
    """An image directory as a Table (TFRecord data streams instead: `record_stream.prepare`)."""
    spec = config.data.feature_spec
    if not spec:
        raise BadConfig(f"data.featureSpec: required to read {config.data.uri} (the name, dtype and shape of "
                        f"each feature)")
    return _image_directory(config.data.uri, spec)


def _tf():
    from .tf_runtime import tf
    return tf


def name_bad_record(name: str, batch, features: dict, start: int) -> None:
    tf = _tf()
    for i, record in enumerate(batch):
        try:
            tf.io.parse_single_example(record, features)
        except tf.errors.InvalidArgumentError as e:
            raise BadData(f"data: {name} record {start + i}: {message(e)}") from None


def message(e) -> str:
    """TF's first line without the op and device decoration: `Key: image.  Data types don't match. …`."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", e.message.splitlines()[0])
    return re.sub(r"\s*\[Op:\w+\]$", "", text).strip()


def _image_directory(uri: str, spec: dict):
    from .data import Table

    if len(spec) != 1:
        raise BadConfig(f"data.featureSpec: an image directory has one input, the image; got {', '.join(spec)}")
    name, image = next(iter(spec.items()))
    if image["dtype"] not in ("uint8", "float32") or len(image["shape"]) != 3 or image["shape"][2] not in (1, 3, 4):
        raise BadConfig(f"data.featureSpec.{name}: an image is uint8 or float32 [height, width, channels 1, 3 "
                        f"or 4], got {image['dtype']} {image['shape']}")
    root = sources.resolve_local_path(uri)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise BadData(f"data.uri: {root} needs one sub-folder per class (at least 2), found {classes}")
    pixels, labels = [], []
    for label in classes:
        files = sorted(p for p in (root / label).iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise BadData(f"data: class folder {label}/ holds no images")
        for path in files:
            pixels.append(_decode(path, f"{label}/{path.name}", image))
            labels.append(label)
    return Table(features=np.stack(pixels), target=np.array(labels), feature_names=[], source=root.name)


def _decode(path: Path, label: str, image: dict) -> np.ndarray:
    tf = _tf()
    height, width, channels = image["shape"]
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise BadData(f"data: {label} is not a .png, .jpg or .jpeg file")
    try:
        decoded = tf.io.decode_image(path.read_bytes(), channels=channels, expand_animations=False)
    except tf.errors.InvalidArgumentError as e:
        raise BadData(f"data: {label} does not decode as an image ({message(e)})") from None
    resized = tf.image.resize(decoded, [height, width]).numpy()
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8) if image["dtype"] == "uint8" else resized.astype(np.float32)
