"""Data URIs: which bytes a job config points at (S3 is only parsed here: no S3 endpoint is reachable)."""
import gzip

import pytest

from modelops_training import sources
from modelops_training.errors import BadConfig, BadData


def test_pvc_uri_is_a_path_under_the_claims_mount():
    assert sources.resolve_local_path("pvc://datasets/house/2024.csv", {"MODELOPS_PVC_ROOT": "/data"}) \
        == sources.Path("/data/datasets/house/2024.csv")
    assert sources.resolve_local_path("pvc://datasets/h.csv", {}) == sources.Path("/mnt/pvc/datasets/h.csv")


def test_file_uri_and_plain_paths_are_local_files():
    assert sources.resolve_local_path("file:///srv/h.csv") == sources.Path("/srv/h.csv")
    assert sources.resolve_local_path("data/h.csv") == sources.Path("data/h.csv")


@pytest.mark.parametrize("uri", ["pvc://only-a-claim", "ftp://host/h.csv"])
def test_malformed_or_unsupported_uris_are_config_errors(uri):
    with pytest.raises(BadConfig, match="data.uri"):
        sources.resolve_local_path(uri)


def test_s3_uri_names_bucket_and_key():
    assert sources.parse_s3_uri("s3://ml-data/house/2024.csv") == sources.S3Location("ml-data", "house/2024.csv")
    with pytest.raises(BadConfig, match="not s3://<bucket>/<key>"):
        sources.parse_s3_uri("s3://bucket-only")


def test_bundled_datasets_are_csv_with_a_header():
    raw, label = sources.read_bytes("builtin:diabetes")
    assert label == "diabetes.csv"
    lines = raw.decode().splitlines()
    assert lines[0].split(",")[-1] == "progression" and len(lines) == 443
    with pytest.raises(BadConfig, match="unknown bundled dataset 'mnist'"):
        sources.read_bytes("builtin:mnist")


def test_gzipped_csv_files_are_decompressed(tmp_path):
    (tmp_path / "h.csv.gz").write_bytes(gzip.compress(b"x,y\n1,2\n"))
    assert sources.read_bytes(str(tmp_path / "h.csv.gz")) == (b"x,y\n1,2\n", "h.csv")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(BadData, match="bad.csv.gz is not valid gzip"):
        sources.read_bytes(str(tmp_path / "bad.csv.gz"))
