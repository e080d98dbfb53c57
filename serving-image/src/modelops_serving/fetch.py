"""`modelops-fetch`: the serving pod's init step.

Copies a version directory (the manifest and every file it lists) from mounted storage into
the pod's own volume, then verifies the copy against the manifest. Exit 0 when the copy is
whole; 1 with a one-line reason on stderr when it is not (missing manifest, missing file,
checksum mismatch); 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Sequence

from modelops_contracts import manifest as manifest_contract


def fetch(source: Path, dest: Path) -> manifest_contract.Manifest:
    m = manifest_contract.read(source)   # refuses paths that leave the version directory
    dest.mkdir(parents=True, exist_ok=True)
    root = source.resolve()
    for rel in sorted(m.files):
        target = dest / rel
        if not (source / rel).is_file():
            raise manifest_contract.ManifestError(f"{rel}: listed in the manifest but missing in {source}")
        if root not in (source / rel).resolve().parents:   # a symbolic link out of the version
            raise manifest_contract.ManifestError(f"{rel}: leads outside {source}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, target)
    shutil.copyfile(source / manifest_contract.FILENAME, dest / manifest_contract.FILENAME)
    return manifest_contract.verify(dest)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelops-fetch", description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, type=Path, help="version directory on mounted storage")
    parser.add_argument("--dest", required=True, type=Path, help="directory the server will load (e.g. an emptyDir)")
    args = parser.parse_args(argv)
    try:
        m = fetch(args.source, args.dest)
    except (manifest_contract.ManifestError, OSError) as e:
        print(f"modelops-fetch: refused {args.source}: {e}", file=sys.stderr)
        return 1
    print(f"modelops-fetch: {m.name} {m.version}: {len(m.files)} files verified in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
