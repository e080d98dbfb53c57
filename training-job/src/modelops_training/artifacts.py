"""The version directory, written so that it is either complete or absent.

Files are written into a hidden staging directory beside the version directory, the manifest is
written last, and one rename publishes the whole version. A crash leaves at worst a dot-named
staging directory without a manifest, which the next attempt removes.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from modelops_contracts import manifest as mf

from .errors import StorageError

STAGING_MARK = ".staging-"
REPLACED_MARK = ".replaced-"


def staging_prefix(version_dir: Path) -> str:
    return f".{version_dir.name}{STAGING_MARK}"


def backup_dir(version_dir: Path, attempt: int) -> Path:
    """Where BackupAndRestore keeps the training state of one attempt (on the shared storage)."""
    return version_dir.parent / f".{version_dir.name}.attempt-{attempt}.backup"


def ensure_parent(version_dir: Path) -> None:
    try:
        version_dir.parent.mkdir(parents=True, exist_ok=True)
        probe = version_dir.parent / f".{version_dir.name}.probe-{uuid.uuid4().hex[:8]}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise StorageError(f"storageRoot: cannot write {e.filename or version_dir.parent} as {identity()}: "
                           f"{e.strerror or e}{_ownership_hint(e)}") from None


def identity() -> str:
    """Who this process writes as: what a volume's owner and mode must allow."""
    return f"uid {os.getuid()} gid {os.getgid()} (groups {','.join(str(g) for g in os.getgroups()) or 'none'})"


def _ownership_hint(error: OSError) -> str:
    if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ""
    return ("; the volume must be writable by this user or group: set spec.podSecurityContext (or the "
            "operator's defaults), or change the directory's owner (fsGroup does not apply to hostPath or NFS)")


def remove_leftovers(version_dir: Path, attempt: int = 1) -> None:
    """What crashes and earlier runs left beside the versions: half-written staging directories, replaced
    copies a crash kept from being removed, and every training backup but this attempt's (a new attempt
    never resumes another's: it trains with its own seed, and an older version never trains again).
    Published versions stay."""
    mine = backup_dir(version_dir, attempt).name
    leftovers = [*version_dir.parent.glob(f".*{STAGING_MARK}*"), *version_dir.parent.glob(f".*{REPLACED_MARK}*"),
                 *(p for p in version_dir.parent.glob(".*.attempt-*.backup") if p.name != mine)]
    for stale in leftovers:
        shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def staged_version(version_dir: Path) -> Iterator[Path]:
    """Yield a staging directory; on normal exit publish it as `version_dir`, on error remove it."""
    ensure_parent(version_dir)
    staging = version_dir.parent / f"{staging_prefix(version_dir)}{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        yield staging
        publish(staging, version_dir)
    except OSError as e:
        raise StorageError(f"storage: writing {e.filename or version_dir} as {identity()}: "
                           f"{e.strerror or e}{_ownership_hint(e)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, version_dir: Path) -> None:
    """Rename the staging directory into place, replacing an earlier copy of the same version."""
    if not (staging / mf.FILENAME).is_file():
        raise StorageError(f"storage: refusing to publish {version_dir.name} without a manifest")
    make_readable(staging)
    old = None
    if version_dir.exists():
        old = version_dir.parent / f".{version_dir.name}{REPLACED_MARK}{uuid.uuid4().hex[:8]}"
        os.rename(version_dir, old)
    os.rename(staging, version_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def make_readable(root: Path) -> None:
    """Temporary files are created 0600; the serving pods may read the version as another user."""
    root.chmod(0o755)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def write_json(path: Path, data: Any) -> None:
    mf.atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def list_files(root: Path) -> list[str]:
    """Every file under root except the manifest itself, as sorted relative paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.name != mf.FILENAME)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
