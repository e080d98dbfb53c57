"""Sizes of OCI image archives as a registry or containerd counts them: the compressed layers (what is stored
and transferred) and the uncompressed layers (what the snapshotter unpacks). Standard library, plus the
zstd command for zstd layers.

Usage: python3 hack/images/archive_sizes.py ARCHIVE...   (prints a Markdown table)
"""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import threading
import zlib
from pathlib import Path

CHUNK = 1 << 20


def _blob(archive: tarfile.TarFile, digest: str):
    member = archive.extractfile(f"blobs/{digest.replace(':', '/')}")
    if member is None:
        raise ValueError(f"blob {digest} is missing from the archive")
    return member


def uncompressed_size(stream, media_type: str) -> int:
    """Bytes of one layer once decompressed: gzip here, zstd by the zstd command (not in Python 3.11)."""
    if media_type.endswith("zstd"):
        return _zstd_size(stream)
    decompressor = zlib.decompressobj(wbits=47) if media_type.endswith("gzip") else None
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(decompressor.decompress(chunk)) if decompressor else len(chunk)
    return total + (len(decompressor.flush()) if decompressor else 0)


def _zstd_size(stream) -> int:
    with subprocess.Popen(["zstd", "-dc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as zstd:
        def feed() -> None:
            while chunk := stream.read(CHUNK):
                zstd.stdin.write(chunk)
            zstd.stdin.close()

        feeder = threading.Thread(target=feed)
        feeder.start()
        total = 0
        while chunk := zstd.stdout.read(CHUNK):
            total += len(chunk)
        feeder.join()
    if zstd.returncode:
        raise ValueError(f"zstd -dc failed with exit {zstd.returncode}")
    return total


def archive_sizes(path: Path) -> dict[str, object]:
    """The image reference, layer count and compressed/uncompressed byte counts of a one-image OCI archive."""
    with tarfile.open(path) as archive:
        index = json.load(archive.extractfile("index.json"))
        (entry,) = index["manifests"]
        manifest = json.load(_blob(archive, entry["digest"]))
        layers = manifest["layers"]
        return {
            "ref": entry.get("annotations", {}).get("org.opencontainers.image.ref.name", "?"),
            "layers": len(layers),
            "compressed": sum(layer["size"] for layer in layers),
            "uncompressed": sum(uncompressed_size(_blob(archive, layer["digest"]), layer["mediaType"])
                                for layer in layers),
        }


def mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB"


def main(paths: list[str]) -> int:
    print("| image | layers | compressed | uncompressed |\n|---|---|---|---|")
    for path in paths:
        sizes = archive_sizes(Path(path))
        print(f"| `{sizes['ref']}` | {sizes['layers']} | {mib(sizes['compressed'])} | {mib(sizes['uncompressed'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
