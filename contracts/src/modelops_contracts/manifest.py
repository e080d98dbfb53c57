"""The artifact manifest: `manifest.json` in every version directory.

It lists each file's size and sha256, what the model expects and returns, and which
file to serve. The trainer writes it, compression extends it, the serving image and its
init step refuse a version whose files do not match it.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from . import API_VERSION
from . import drift
from . import signature as sig

KIND = "ArtifactManifest"
FILENAME = "manifest.json"
TASKS = ("regression", "classification")
# What the serving image looks for, in order of preference: the compressed TFLite model, the uncompressed
# (float32) TFLite model that compression also writes, then the forms that need TensorFlow to load.
SERVABLE_KINDS = ("tflite", "tfliteFloat32", "savedModel", "keras")
# The kinds the TensorFlow-free serving image (LiteRT) runs.
TFLITE_KINDS = ("tflite", "tfliteFloat32")


class ManifestError(ValueError):
    """A manifest that is missing, malformed, or does not match the files beside it."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary name in the same directory, then rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes 0600 files; artifacts are read by other users (the serving pod), so honour the umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Manifest:
    namespace: str
    name: str
    version: str
    task: str                                   # regression | classification
    feature_names: list[str]
    # Classification: the class labels in output order; regression: empty.
    classes: list[Any] = field(default_factory=list)
    # Relative path -> {"size": int, "sha256": str}; directories are listed file by file.
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    # kind (one of SERVABLE_KINDS) -> relative path of the file or directory to load.
    servables: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Every input and output tensor; None (manifests written before the field) reads as `effective_signature`'s
    # one float32 input of featureNames.
    signature: sig.Signature | None = None
    # The training split's distribution per input feature, for the server's drift score; None in
    # manifests written before it, and for inputs that are not a flat feature vector (images).
    reference: drift.Reference | None = None

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def effective_signature(self) -> sig.Signature:
        return self.signature or sig.legacy(self.feature_names, self.task, self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {"apiVersion": API_VERSION, "kind": KIND, "namespace": self.namespace, "name": self.name,
                "version": self.version, "task": self.task, "featureNames": self.feature_names,
                "classes": self.classes, "files": self.files, "servables": self.servables,
                "metrics": self.metrics, "createdAt": self.created_at, "extra": self.extra,
                **({"signature": self.signature.to_dict()} if self.signature else {}),
                **({"reference": self.reference.to_dict()} if self.reference else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Manifest":
        if not isinstance(d, Mapping) or d.get("kind") != KIND:
            raise ManifestError("not an ArtifactManifest")
        try:
            task = d["task"]
            if task not in TASKS:
                raise ManifestError(f"task: {task!r} is not one of {', '.join(TASKS)}")
            files = dict(d.get("files") or {})
            servables = dict(d.get("servables") or {})
            for where, rel in [("files", f) for f in files] + [(f"servables.{k}", v) for k, v in servables.items()]:
                inside_version(rel, where)
            signature = sig.Signature.from_dict(d["signature"]) if d.get("signature") is not None else None
            reference = drift.Reference.from_dict(d["reference"]) if d.get("reference") is not None else None
            return cls(namespace=d["namespace"], name=d["name"], version=d["version"], task=task,
                       feature_names=list(d["featureNames"]), classes=list(d.get("classes") or []),
                       files=files, servables=servables,
                       metrics=dict(d.get("metrics") or {}), created_at=d.get("createdAt", ""),
                       extra=dict(d.get("extra") or {}), signature=signature, reference=reference)
        except KeyError as e:
            raise ManifestError(f"missing field {e.args[0]}") from None
        except (sig.SignatureError, drift.ReferenceError) as e:
            raise ManifestError(str(e)) from None

    def add_files(self, root: Path, paths: Iterable[str]) -> None:
        """Record size and sha256 of each path (files, or every file under a directory)."""
        root = Path(root)
        for rel in paths:
            p = root / rel
            targets = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
            for q in targets:
                self.files[q.relative_to(root).as_posix()] = {"size": q.stat().st_size, "sha256": sha256_file(q)}

    def write(self, root: Path) -> Path:
        path = Path(root) / FILENAME
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True))
        return path


def inside_version(rel: Any, where: str) -> str:
    """A manifest path must name something inside the version directory: a manifest is data on
    shared storage, and `../other-model/…` or `/etc/…` would make the copy read or overwrite outside it."""
    if not isinstance(rel, str) or not rel:
        raise ManifestError(f"{where}: {rel!r} is not a relative path")
    parts = rel.split("/")
    if PurePosixPath(rel).is_absolute() or "\\" in rel or ":" in parts[0] or any(p in ("..", "") for p in parts):
        raise ManifestError(f"{where}: {rel!r} is not a path inside the version directory")
    return rel


def read(root: str | Path) -> Manifest:
    path = Path(root) / FILENAME
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not JSON ({e.msg})") from None


def verify(root: str | Path) -> Manifest:
    """Read the manifest and check every listed file; raises ManifestError naming the first problem."""
    root = Path(root)
    m = read(root)
    if not m.files:
        raise ManifestError(f"{root / FILENAME}: lists no files")
    for rel, entry in sorted(m.files.items()):
        p = root / rel
        if not p.is_file():
            raise ManifestError(f"{rel}: listed in the manifest but missing")
        if p.stat().st_size != entry.get("size"):
            raise ManifestError(f"{rel}: size {p.stat().st_size} differs from the manifest's {entry.get('size')}")
        if sha256_file(p) != entry.get("sha256"):
            raise ManifestError(f"{rel}: sha256 differs from the manifest")
    for kind, rel in m.servables.items():
        if not any(f == rel or f.startswith(rel.rstrip("/") + "/") for f in m.files):
            raise ManifestError(f"servables.{kind}: {rel} is not among the manifest's files")
    return m
