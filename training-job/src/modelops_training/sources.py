"""Where data bytes come from: local paths, file://, pvc:// (a mounted claim), s3://, builtin:<name>.

Only this module knows URI schemes; it returns bytes and a short name for messages.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

from .errors import BadConfig, BadData

PVC_ROOT_ENV = "MODELOPS_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/pvc"
BUNDLED = ("diabetes", "digits", "breast_cancer")
GENERATED = ("linear", "digits-images")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


def parse_s3_uri(uri: str) -> S3Location:
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise BadConfig(f"data.uri: {uri!r} is not s3://<bucket>/<key>")
    return S3Location(bucket=parsed.netloc, key=key)


def resolve_local_path(uri: str, env: os._Environ | dict = os.environ) -> Path:
    """The filesystem path behind a local, file:// or pvc:// URI (pvc://<claim>/<path> → <root>/<claim>/<path>)."""
    if uri.startswith("pvc://"):
        rest = uri[len("pvc://"):].lstrip("/")
        if "/" not in rest:
            raise BadConfig(f"data.uri: {uri!r} is not pvc://<claim>/<path>")
        return Path(env.get(PVC_ROOT_ENV, DEFAULT_PVC_ROOT)) / rest
    if uri.startswith("file://"):
        return Path(urlparse(uri).path)
    if "://" in uri:
        raise BadConfig(f"data.uri: scheme of {uri!r} is not supported (use a path, file://, pvc://, s3:// or builtin:)")
    return Path(uri)


def builtin_name(uri: str) -> str | None:
    """`digits` for `builtin:digits`; None for other URIs; an error for unknown bundled names."""
    if not uri.startswith("builtin:"):
        return None
    name = uri[len("builtin:"):]
    if name not in BUNDLED + GENERATED:
        raise BadConfig(f"data.uri: unknown bundled dataset {name!r} (have: {', '.join(BUNDLED + GENERATED)})")
    return name


def read_bytes(uri: str, s3_endpoint: str | None = None) -> tuple[bytes, str]:
    """The (decompressed) bytes of a CSV, and the file name to use in messages."""
    if (name := builtin_name(uri)) is not None:
        if name not in BUNDLED:
            raise BadConfig(f"data.uri: builtin:{name} is generated, not read")
        raw = resources.files("modelops_training.datasets").joinpath(f"{name}.csv.gz").read_bytes()
        return gzip.decompress(raw), f"{name}.csv"
    if uri.startswith("s3://"):
        raw, label = _read_s3(parse_s3_uri(uri), s3_endpoint)
    else:
        path = resolve_local_path(uri)
        label = path.name
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise BadData(f"data.uri: cannot read {path}: {e.strerror or e}") from None
    if label.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except OSError as e:
            raise BadData(f"data.uri: {label} is not valid gzip ({e})") from None
        label = label[:-3]
    return raw, label


def _read_s3(loc: S3Location, endpoint: str | None) -> tuple[bytes, str]:
    import boto3
    import botocore.exceptions

    # AWS_ENDPOINT_URL and the usual AWS_* credentials are honoured by boto3 itself.
    client = boto3.client("s3", endpoint_url=endpoint or None)
    try:
        body = client.get_object(Bucket=loc.bucket, Key=loc.key)["Body"].read()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise BadData(f"data.uri: cannot read s3://{loc.bucket}/{loc.key}: {e}") from None
    return body, loc.key.rsplit("/", 1)[-1]
