"""hack/node/oci_image.py: the node's own images are packed reproducibly, in the layout containerd imports."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.support.kube import REPO_ROOT

_spec = importlib.util.spec_from_file_location("oci_image", REPO_ROOT / "hack" / "node" / "oci_image.py")
oci_image = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oci_image)


def pack(tmp_path: Path, name: str, *extra: str) -> Path:
    tool = tmp_path / "tool"
    if not tool.exists():
        tool.write_bytes(b"#!/bin/sh\necho hi\n")
        tool.chmod(0o755)
    out = tmp_path / name
    oci_image.main(["--name", "modelops.local/tool:1", "--out", str(out), "--entrypoint", "/bin/tool",
                    "--file", f"{tool}:/bin/tool", "--link", "/bin/sh:tool", *extra])
    return out


def read(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_same_inputs_give_the_same_archive(tmp_path: Path) -> None:
    assert pack(tmp_path, "a.tar").read_bytes() == pack(tmp_path, "b.tar").read_bytes()


def test_index_names_the_image_for_containerd_and_blobs_match_their_digests(tmp_path: Path) -> None:
    files = read(pack(tmp_path, "a.tar"))
    index = json.loads(files["index.json"])
    (entry,) = index["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "modelops.local/tool:1"
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
    assert config["config"]["Entrypoint"] == ["/bin/tool"]
    assert config["config"]["User"] == "65532:65532"
    for blob in (manifest["config"], *manifest["layers"]):
        assert len(files[f"blobs/sha256/{blob['digest'].split(':')[1]}"]) == blob["size"]


def test_layer_holds_files_links_and_a_writable_tmp(tmp_path: Path) -> None:
    files = read(pack(tmp_path, "a.tar"))
    manifest = json.loads(files[f"blobs/sha256/{json.loads(files['index.json'])['manifests'][0]['digest'][7:]}"])
    layer = files[f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}"]
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/tool"].mode == 0o755 and members["bin/tool"].mtime == 0
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "tool"
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777


@pytest.mark.parametrize(("args", "names"), [
    (["--name", "modelops.local/tool"], "--name"),
    (["--file", "no-destination"], "--file"),
    (["--link", "relative:target"], "--link"),
])
def test_bad_arguments_name_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], names: str,
) -> None:
    # A repeated option's last value wins, so `args` replaces or adds to valid ones.
    valid = ["--name", "modelops.local/tool:1", "--out", str(tmp_path / "x.tar"), "--entrypoint", "/x"]
    with pytest.raises(SystemExit):
        oci_image.main(valid + args)
    assert names in capsys.readouterr().err
