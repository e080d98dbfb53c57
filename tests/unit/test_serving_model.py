"""The served model refuses a version it cannot serve and says why (no TensorFlow needed)."""
from modelops_contracts.manifest import Manifest
from modelops_serving.model import ServedModel


def version(root, servables, files):
    root.mkdir()
    for name, content in files.items():
        (root / name).write_bytes(content)
    m = Manifest(namespace="ml", name="m", version="v1", task="regression", feature_names=["a", "b"],
                 servables=servables)
    m.add_files(root, list(files))
    m.write(root)
    return root


def test_a_version_without_a_servable_is_refused(tmp_path):
    model = ServedModel(version(tmp_path / "v1", {}, {"metrics.json": b"{}"}), "m")
    assert not model.load() and not model.ready
    assert model.reason.startswith("manifest lists no tflite or tfliteFloat32 or savedModel or keras servable")


def test_a_tflite_file_that_is_not_a_model_is_refused_with_the_runtimes_reason(tmp_path):
    model = ServedModel(version(tmp_path / "v1", {"tflite": "model.tflite"}, {"model.tflite": b"not a flatbuffer"}), "m")
    assert not model.load()
    assert model.reason.startswith("cannot load the model:")


def test_a_directory_without_a_manifest_is_refused(tmp_path):
    model = ServedModel(tmp_path, "m")
    assert not model.load() and "no manifest" in model.reason
