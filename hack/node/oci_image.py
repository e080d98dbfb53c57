#!/usr/bin/env python3
"""Packs files into a single-layer OCI image archive that `ctr images import` accepts.

No registry is reachable here, so the node's system images (pause, CoreDNS, metrics-server, busybox)
are made from binaries built or installed on this machine. The archive is reproducible: fixed
timestamps and owners, sorted entries, so the same inputs give the same image digest.

    oci_image.py --name modelops.local/pause:3.10.2 --out pause.tar --user 65535 \
        --entrypoint /pause --file build/pause:/pause
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="full image reference, e.g. modelops.local/pause:3.10.2")
    p.add_argument("--out", required=True, help="archive to write")
    p.add_argument("--file", action="append", default=[], metavar="SRC:DST", help="copy SRC to DST (mode kept)")
    p.add_argument("--link", action="append", default=[], metavar="DST:TARGET", help="symlink DST -> TARGET")
    p.add_argument("--entrypoint", nargs="+", required=True)
    p.add_argument("--user", default="65532:65532", help="numeric uid[:gid] the image runs as")
    args = p.parse_args(argv)
    if ":" not in args.name.rsplit("/", 1)[-1]:
        p.error(f"--name {args.name!r} needs a tag (name:tag)")
    for spec in args.file:
        if spec.count(":") != 1 or not spec.split(":")[1].startswith("/"):
            p.error(f"--file {spec!r} must be SRC:/absolute/dst")
    for spec in args.link:
        if spec.count(":") != 1 or not spec.startswith("/"):
            p.error(f"--link {spec!r} must be /absolute/dst:TARGET")
    return args


def _entry(name, kind, mode, size=0, linkname=""):
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode, info.size, info.linkname = kind, mode, size, linkname
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def build_layer(files, links):
    """Returns the uncompressed layer tar: parent directories, files and symlinks, sorted."""
    entries = {}
    for spec in files:
        src, dst = spec.split(":")
        entries[dst] = ("file", src)
    for spec in links:
        dst, target = spec.split(":")
        entries[dst] = ("link", target)
    dirs = {os.path.dirname(p) for p in entries}
    for d in list(dirs):
        while d not in ("/", ""):
            dirs.add(d)
            d = os.path.dirname(d)
    dirs.add("/tmp")  # writable scratch for images run with a read-only root get an emptyDir here
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs - {"/", ""}):
            tar.addfile(_entry(d, tarfile.DIRTYPE, 0o1777 if d == "/tmp" else 0o755))
        for dst in sorted(entries):
            kind, value = entries[dst]
            if kind == "link":
                tar.addfile(_entry(dst, tarfile.SYMTYPE, 0o777, linkname=value))
                continue
            with open(value, "rb") as f:
                data = f.read()
            mode = os.stat(value).st_mode & 0o777
            tar.addfile(_entry(dst, tarfile.REGTYPE, mode, size=len(data)), io.BytesIO(data))
    return buf.getvalue()


def _blob(tar, data):
    digest = hashlib.sha256(data).hexdigest()
    info = _entry(f"blobs/sha256/{digest}", tarfile.REGTYPE, 0o644, size=len(data))
    tar.addfile(info, io.BytesIO(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_archive(args):
    layer = build_layer(args.file, args.link)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"User": args.user, "Entrypoint": args.entrypoint, "Env": ["PATH=/bin:/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        layer_desc = _blob(tar, gzip.compress(layer, mtime=0))
        config_desc = _blob(tar, json.dumps(config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, **config_desc},
            "layers": [{"mediaType": MEDIA_LAYER, **layer_desc}],
        }
        manifest_desc = _blob(tar, json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": MEDIA_MANIFEST, **manifest_desc,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": args.name,
                    "org.opencontainers.image.ref.name": args.name.rsplit(":", 1)[1],
                },
            }],
        }
        for name, data in (("oci-layout", {"imageLayoutVersion": "1.0.0"}), ("index.json", index)):
            raw = json.dumps(data, sort_keys=True).encode()
            tar.addfile(_entry(name, tarfile.REGTYPE, 0o644, size=len(raw)), io.BytesIO(raw))
    os.replace(tmp, args.out)
    return manifest_desc["digest"]


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(f"{args.name} {write_archive(args)} -> {args.out}")


if __name__ == "__main__":
    main()
