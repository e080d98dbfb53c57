"""modelops-fetch: the serving pod's init step copies a version and refuses a damaged one."""
import json
import subprocess
import sys

import pytest

from modelops_contracts.manifest import Manifest
from modelops_serving.fetch import main


def version_dir(root):
    root.mkdir()
    (root / "model.tflite").write_bytes(b"\x00model-bytes")
    (root / "saved_model").mkdir()
    (root / "saved_model" / "saved_model.pb").write_bytes(b"graph")
    m = Manifest(namespace="ml", name="house", version="v3", task="regression", feature_names=["a"],
                 servables={"tflite": "model.tflite", "savedModel": "saved_model"})
    m.add_files(root, ["model.tflite", "saved_model"])
    m.write(root)
    return root


def test_a_whole_version_is_copied_and_verified(tmp_path, capsys):
    source = version_dir(tmp_path / "v3")
    assert main(["--source", str(source), "--dest", str(tmp_path / "local")]) == 0
    assert (tmp_path / "local" / "saved_model" / "saved_model.pb").read_bytes() == b"graph"
    assert "2 files verified" in capsys.readouterr().out


def test_a_tampered_file_is_refused_with_one_line_naming_it(tmp_path, capsys):
    source = version_dir(tmp_path / "v3")
    (source / "model.tflite").write_bytes(b"\x00model-bytez")
    assert main(["--source", str(source), "--dest", str(tmp_path / "local")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.tflite: sha256 differs" in err


def test_a_missing_file_or_manifest_is_refused(tmp_path, capsys):
    source = version_dir(tmp_path / "v3")
    (source / "saved_model" / "saved_model.pb").unlink()
    assert main(["--source", str(source), "--dest", str(tmp_path / "a")]) == 1
    assert "saved_model/saved_model.pb: listed in the manifest but missing" in capsys.readouterr().err
    assert main(["--source", str(tmp_path / "nowhere"), "--dest", str(tmp_path / "b")]) == 1
    assert "no manifest" in capsys.readouterr().err


def test_the_console_script_is_the_init_command(tmp_path):
    source = version_dir(tmp_path / "v3")
    done = subprocess.run([sys.executable, "-m", "modelops_serving.fetch", "--source", str(source),
                           "--dest", str(tmp_path / "local")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    missing = subprocess.run([sys.executable, "-m", "modelops_serving.fetch", "--source", str(source)],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "--dest" in missing.stderr


@pytest.mark.parametrize("rel", ["../other/model.tflite", "/etc/passwd", "a//b", "./x/../../y", "", "C:/x"])
def test_a_manifest_path_outside_the_version_is_refused(tmp_path, capsys, rel):
    source = version_dir(tmp_path / "v3")
    raw = json.loads((source / "manifest.json").read_text())
    raw["files"][rel] = {"size": 1, "sha256": "0"}
    (source / "manifest.json").write_text(json.dumps(raw))
    assert main(["--source", str(source), "--dest", str(tmp_path / "local")]) == 1
    assert "is not a" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_a_symbolic_link_out_of_the_version_is_refused(tmp_path, capsys):
    (tmp_path / "secret").write_bytes(b"\x00model-bytes")
    source = version_dir(tmp_path / "v3")
    (source / "model.tflite").unlink()
    (source / "model.tflite").symlink_to(tmp_path / "secret")
    assert main(["--source", str(source), "--dest", str(tmp_path / "local")]) == 1
    assert "model.tflite: leads outside" in capsys.readouterr().err
