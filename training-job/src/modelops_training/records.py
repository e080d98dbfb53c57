"""TFRecord files of `tf.train.Example` and image directories, read with tf.data against the declared
`data.featureSpec`.

TFRecord: `data.uri` is a `.tfrecord`/`.tfrecords` file or a glob of shards (local or pvc://); every
feature is parsed as its declared dtype and shape, `data.target` names the scalar target feature.
Records are read file by file in batches (no file is loaded whole); a record that does not parse is
named by file, record index and TF's message (which names the feature). Image directory: one
sub-folder per class of PNG/JPEG files, decoded to the declared [height, width, channels] and resized;
a file that does not decode is named. The parsed examples are then split and fingerprinted like any
other data (in memory).
"""
from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np
from modelops_contracts.jobconfig import JobConfig

from . import sources
from .errors import BadConfig, BadData

RECORD_SUFFIXES = (".tfrecord", ".tfrecords")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BATCH = 256


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
    spec = config.data.feature_spec
    if not spec:
        raise BadConfig(f"data.featureSpec: required to read {config.data.uri} (the name, dtype and shape of "
                        f"each feature)")
    if kind(config.data.uri, spec) == "tfrecord":
        return _tfrecords(config.data.uri, spec, config.data.target)
    return _image_directory(config.data.uri, spec)


def _tf():
    from .tf_runtime import tf
    return tf


def _tfrecords(uri: str, spec: dict, target: str | None):
    from .data import Table

    tf = _tf()
    if target not in spec:
        raise BadConfig(f"data.target: {target!r} must name one of the featureSpec features ({', '.join(spec)})")
    if spec[target]["shape"]:
        raise BadConfig(f"data.featureSpec.{target}.shape: the target is one value per example, use []")
    pattern = str(sources.resolve_local_path(uri))
    files = sorted(glob.glob(pattern))
    if not files:
        raise BadData(f"data.uri: no TFRecord file matches {pattern}")
    parse_as = {"float32": tf.float32, "int64": tf.int64, "uint8": tf.int64, "string": tf.string}
    features = {name: tf.io.FixedLenFeature(s["shape"], parse_as[s["dtype"]]) for name, s in spec.items()}
    columns: dict[str, list] = {name: [] for name in spec}
    for path in files:
        for name, values in _read_file(tf, path, features).items():
            columns[name].append(values)
    arrays = {name: _typed(np.concatenate(parts), spec[name]["dtype"], name, files) for name, parts in columns.items()}
    if not len(arrays[target]):
        raise BadData(f"data.uri: {', '.join(Path(f).name for f in files)} hold no records")
    y = arrays.pop(target)
    x = next(iter(arrays.values())) if len(arrays) == 1 else arrays
    names = []
    if len(arrays) == 1 and x.ndim == 2 and x.dtype == np.float32:
        names = [f"{next(iter(arrays))}_{i}" for i in range(x.shape[1])]
    return Table(features=x, target=y, feature_names=names, source=Path(files[0]).name)


def _read_file(tf, path: str, features: dict) -> dict[str, np.ndarray]:
    name, out, start = Path(path).name, {k: [] for k in features}, 0
    try:
        for batch in tf.data.TFRecordDataset(path).batch(BATCH):
            try:
                parsed = tf.io.parse_example(batch, features)
            except tf.errors.InvalidArgumentError as e:
                _name_bad_record(tf, name, batch, features, start)
                raise BadData(f"data: {name} records {start}..{start + int(batch.shape[0]) - 1}: "
                              f"{_message(e)}") from None
            for k, v in parsed.items():
                out[k].append(v.numpy())
            start += int(batch.shape[0])
    except tf.errors.DataLossError as e:
        raise BadData(f"data: {name} record {start} onwards: not a TFRecord file or corrupt "
                      f"({_message(e)})") from None
    return {k: np.concatenate(v) if v else np.zeros((0, *features[k].shape)) for k, v in out.items()}


def _name_bad_record(tf, name: str, batch, features: dict, start: int) -> None:
    for i, record in enumerate(batch):
        try:
            tf.io.parse_single_example(record, features)
        except tf.errors.InvalidArgumentError as e:
            raise BadData(f"data: {name} record {start + i}: {_message(e)}") from None


def _message(e) -> str:
    """TF's first line without the op and device decoration: `Key: image.  Data types don't match. …`."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", e.message.splitlines()[0])
    return re.sub(r"\s*\[Op:\w+\]$", "", text).strip()


def _typed(values: np.ndarray, dtype: str, name: str, files: list[str]) -> np.ndarray:
    if dtype == "uint8":
        if len(values) and (values.min() < 0 or values.max() > 255):
            raise BadData(f"data: feature {name!r} in {Path(files[0]).name}…: values outside uint8's 0..255")
        return values.astype(np.uint8)
    if dtype == "float32" and not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values.reshape(len(values), -1)))[0][0]
        raise BadData(f"data: feature {name!r} record {bad} (counting across files) is NaN or infinite")
    return values


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
        raise BadData(f"data: {label} does not decode as an image ({_message(e)})") from None
    resized = tf.image.resize(decoded, [height, width]).numpy()
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8) if image["dtype"] == "uint8" else resized.astype(np.float32)
