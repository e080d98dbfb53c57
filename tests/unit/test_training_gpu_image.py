"""The GPU training image: its requirements stay consistent with the CPU image's and with TensorFlow's own
and-cuda extra (resolved against PyPI by `make check-gpu-requirements`; this test needs no network)."""
import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from modelops_operator import constants as c

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "training-job"


def pins(path: Path) -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {Requirement(line).name: Requirement(line) for line in lines if line and not line.startswith("-r")}


def test_gpu_requirements_extend_the_cpu_ones_with_the_same_tensorflow():
    text = (TRAINING / "requirements-gpu.txt").read_text()
    assert re.search(r"^-r requirements\.txt$", text, re.MULTILINE)
    cpu, gpu = pins(TRAINING / "requirements.txt"), pins(TRAINING / "requirements-gpu.txt")
    assert gpu["tensorflow"].extras == {"and-cuda"}
    assert gpu["tensorflow"].specifier == cpu["tensorflow"].specifier


def test_every_cuda_library_tensorflow_asks_for_is_pinned_inside_its_range():
    gpu = pins(TRAINING / "requirements-gpu.txt")
    wanted = [Requirement(r) for r in metadata.requires("tensorflow") or []]
    cuda = [r for r in wanted if r.marker and r.marker.evaluate({"extra": "and-cuda"})
            and not r.marker.evaluate({"extra": ""})]
    assert len(cuda) >= 10, "tensorflow's and-cuda extra was not found in its metadata"
    for requirement in cuda:
        assert requirement.name in gpu, f"{requirement.name} is not pinned in requirements-gpu.txt"
        (pinned,) = list(gpu[requirement.name].specifier)
        assert pinned.operator == "==" and requirement.specifier.contains(pinned.version), \
            f"{requirement.name}=={pinned.version} is outside tensorflow's {requirement.specifier}"


def test_the_gpu_dockerfile_installs_them_and_the_operator_defaults_to_it():
    dockerfile = (TRAINING / "Dockerfile.gpu").read_text()
    assert "-r training-job/requirements-gpu.txt" in dockerfile
    assert re.search(r"^ARG BASE_IMAGE=", dockerfile, re.MULTILINE) and "FROM ${BASE_IMAGE}" in dockerfile
    env = dict(line.split("=", 1) for line in (ROOT / "images.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert c.DEFAULT_TRAINING_GPU_IMAGE == f"{env['TRAINING_GPU_IMAGE']}:{env['IMAGE_TAG']}"
