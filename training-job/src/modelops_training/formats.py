"""Data that is not a CSV table: NumPy `.npz` archives of named N-d arrays, the bundled 8×8 digits
as images, and (in `records.py`) TFRecord files and image directories.

An `.npz` holds one array per input and the target: `data.target` names the target array (default
`y`), `data.features` the input arrays (default: every other array). One input array becomes the
model's single input (a 2-D float array is a table with columns `<array>_<i>`); several become
named inputs for a custom model. Every bad-data message names the file and the array at fault.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from importlib import resources

import numpy as np
from modelops_contracts.jobconfig import JobConfig

from . import records, sources
from .errors import BadData

NPZ_DEFAULT_TARGET = "y"
DIGITS_SIDE = 8
DIGITS_MAX = 16.0   # the bundled digits' pixel values run 0..16


def is_tensor_format(uri: str, feature_spec: dict | None) -> bool:
    return uri.removesuffix(".gz").endswith(".npz") or records.kind(uri, feature_spec) is not None


def load(config: JobConfig):
    if records.kind(config.data.uri, config.data.feature_spec) is not None:
        return records.load(config)
    raw, label = sources.read_bytes(config.data.uri, config.data.s3_endpoint)
    return parse_npz(raw, label, config.data.target, config.data.features)


def parse_npz(raw: bytes, label: str, target: str | None, wanted: tuple[str, ...] | None):
    from .data import Table

    arrays = _arrays(raw, label)
    target = target or NPZ_DEFAULT_TARGET
    names = select(sorted(arrays), target, wanted, label, "array")
    y = arrays[target]
    if y.ndim != 1:
        raise BadData(f"data.target: array {target!r} in {label} has shape {list(y.shape)}, expected one value "
                      f"per example")
    for name in names:
        _check_array(arrays[name], name, len(y), label)
    if len(names) > 1:
        return Table(features={n: arrays[n] for n in names}, target=y, feature_names=[], source=label)
    x = arrays[names[0]]
    if x.ndim == 2 and x.dtype.kind == "f":
        return Table(features=x.astype(np.float32), target=y, source=label,
                     feature_names=[f"{names[0]}_{i}" for i in range(x.shape[1])])
    return Table(features=x, target=y, feature_names=[], source=label)


def select(available: list[str], target: str, wanted, label: str, kind: str) -> list[str]:
    """The feature names (`wanted`, or every other column or array), once the target and each wanted
    name are known to exist; `kind` ("column", "array") is the word the messages use."""
    shown = ", ".join(available[:12]) + (", …" if len(available) > 12 else "") or "none"
    if target not in available:
        raise BadData(f"data.target: {kind} {target!r} not in {label} ({kind}s: {shown})")
    names = list(wanted) if wanted else [h for h in available if h != target]
    missing = [n for n in names if n not in available]
    if missing:
        raise BadData(f"data.features: {kind} {missing[0]!r} not in {label} ({kind}s: {shown})")
    if target in names:
        raise BadData(f"data.features: the target {kind} {target!r} is also listed as a feature")
    if not names:
        raise BadData(f"data.features: {label} has no feature {kind}s besides the target {target!r}")
    return names


def _arrays(raw: bytes, label: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            arrays = {}
            for name in archive.files:
                try:
                    arrays[name] = archive[name]
                except ValueError:   # object arrays need pickle, which data must never run
                    raise BadData(f"data.uri: array {name!r} in {label} holds Python objects; store numbers") from None
            return arrays
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise BadData(f"data.uri: {label} is not a NumPy .npz archive ({e})") from None
    except ValueError as e:
        raise BadData(f"data.uri: {label} is not a NumPy .npz archive ({e})") from None


def _check_array(x: np.ndarray, name: str, examples: int, label: str) -> None:
    if x.ndim < 2:
        raise BadData(f"data.features: array {name!r} in {label} has shape {list(x.shape)}; expected "
                      f"[examples, ...] with at least one dimension per example")
    if len(x) != examples:
        raise BadData(f"data.features: array {name!r} in {label} has {len(x)} examples, the target has {examples}")
    if x.dtype.kind not in "fiub":
        raise BadData(f"data.features: array {name!r} in {label} has dtype {x.dtype}, expected numbers")
    if x.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(x))
        if len(bad):
            raise BadData(f"data: array {name!r} in {label} example {bad[0][0]} holds {x[tuple(bad[0])]} "
                          f"(NaN or infinite)")


def digits_images():
    """`builtin:digits-images`: the bundled digits as uint8 images [n, 8, 8, 1], pixels scaled to 0..255."""
    from .data import Table

    raw = resources.files("modelops_training.datasets").joinpath("digits.csv.gz").read_bytes()
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode()), delimiter=",", skiprows=1, dtype=np.float32)
    pixels = np.rint(table[:, :-1] * (255.0 / DIGITS_MAX)).clip(0, 255).astype(np.uint8)
    images = pixels.reshape(-1, DIGITS_SIDE, DIGITS_SIDE, 1)
    return Table(features=images, target=table[:, -1].astype(np.int64), feature_names=[],
                 source="digits-images")
