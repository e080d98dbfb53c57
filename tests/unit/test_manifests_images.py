"""The images: names and tag from images.env alone, Dockerfiles that lint clean, and entrypoints that are
the same console scripts the tests run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "manifests" / "helm" / "modelops"
RELEASE_MK = REPO_ROOT / "mk" / "release.mk"
VENV_BIN = Path(sys.executable).parent
DOCKERFILES = sorted(p for p in REPO_ROOT.glob("*/Dockerfile*") if not p.name.endswith(".dockerignore"))


def images_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO_ROOT / "images.env").read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_chart_defaults_are_the_images_env_images():
    env = images_env()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["appVersion"] == env["IMAGE_TAG"]
    assert values["image"] == {"repository": env["OPERATOR_IMAGE"], "tag": "", "pullPolicy": "IfNotPresent"}
    images = {k: v for k, v in values["defaults"].items() if k.endswith("Image")}
    assert images == {"trainingImage": f"{env['TRAINING_IMAGE']}:{env['IMAGE_TAG']}",
                      "servingImage": f"{env['SERVING_IMAGE']}:{env['IMAGE_TAG']}",
                      "trainingGpuImage": f"{env['TRAINING_GPU_IMAGE']}:{env['IMAGE_TAG']}"}
    assert values["defaults"]["clusterDomain"] == "cluster.local"


def test_the_pods_the_operator_creates_run_as_the_images_user():
    """The Dockerfiles' USER, the chart's defaults and the operator's built-in defaults name one identity."""
    from modelops_operator import podsecurity
    users = {re.search(r"^USER (\d+):(\d+)$", path.read_text(), re.M).groups() for path in DOCKERFILES}
    assert len(users) == 1, users
    uid, gid = (int(x) for x in users.pop())
    chart = yaml.safe_load((CHART / "values.yaml").read_text())["defaults"]["podSecurityContext"]
    assert chart == podsecurity.DEFAULTS
    assert (chart["runAsUser"], chart["runAsGroup"], chart["fsGroup"]) == (uid, gid, gid)


def test_release_makefile_spells_no_image_name_or_tag_of_its_own():
    text = RELEASE_MK.read_text()
    for value in images_env().values():
        assert value not in text, f"mk/release.mk repeats {value!r}: take it from images.env"


def make_dry_run(*targets: str) -> list[str]:
    result = subprocess.run(["make", "-n", "-s", "-C", str(REPO_ROOT), *targets],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.splitlines()


def test_images_kind_load_and_deploy_use_the_images_env_references():
    env = images_env()
    refs = {name: f"{env[f'{name}_IMAGE']}:{env['IMAGE_TAG']}"
            for name in ("OPERATOR", "TRAINING", "TRAINING_GPU", "SERVING")}
    builds = [line for line in make_dry_run("images") if line.startswith("docker build")]
    assert {re.search(r"-f (\S+)", b)[1]: re.search(r"-t (\S+)", b)[1] for b in builds} == {
        "operator/Dockerfile": refs["OPERATOR"], "training-job/Dockerfile": refs["TRAINING"],
        "training-job/Dockerfile.gpu": refs["TRAINING_GPU"], "serving-image/Dockerfile": refs["SERVING"]}
    (load,) = [line for line in make_dry_run("kind-load") if "load docker-image" in line]
    # Not the multi-GB GPU image: kind has no GPUs.
    assert set(load.split()[-3:]) == set(refs.values()) - {refs["TRAINING_GPU"]}
    deploy = " ".join(make_dry_run("deploy"))
    for expected in (f"image.repository={env['OPERATOR_IMAGE']}", f"image.tag={env['IMAGE_TAG']}",
                     f"defaults.trainingImage={refs['TRAINING']}", f"defaults.servingImage={refs['SERVING']}",
                     f"defaults.trainingGpuImage={refs['TRAINING_GPU']}"):
        assert expected in deploy


def test_make_test_resolves_the_gpu_requirements_as_the_gpu_image_installs_them():
    """CI never builds the multi-GB GPU image, so `make test` resolves its requirements on PyPI instead, with
    the same constraints (the lock) as Dockerfile.gpu: without them pip may pick versions the image never gets."""
    dockerfile = (REPO_ROOT / "training-job" / "Dockerfile.gpu").read_text()
    installed = re.search(r"pip install (.*-r training-job/requirements-gpu\.txt)", dockerfile)[1]
    (resolve,) = [line for line in make_dry_run("test") if "requirements-gpu.txt" in line]
    assert "--dry-run" in resolve.split() and resolve.endswith(installed)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_lints_clean(dockerfile):
    result = subprocess.run([str(VENV_BIN / "hadolint"), "--no-color", str(dockerfile)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def entrypoint(dockerfile: Path) -> list[str] | None:
    lines = [line for line in dockerfile.read_text().splitlines() if line.startswith("ENTRYPOINT")]
    return json.loads(lines[-1].removeprefix("ENTRYPOINT")) if lines else None


def test_operator_image_has_an_entrypoint():
    assert entrypoint(REPO_ROOT / "operator" / "Dockerfile") == ["modelops-operator"]


@pytest.mark.parametrize("dockerfile", [d for d in DOCKERFILES if entrypoint(d)], ids=lambda p: p.parent.name)
def test_image_entrypoint_is_a_console_script_of_the_package_it_installs(dockerfile):
    command = entrypoint(dockerfile)[0]
    project = tomllib.loads((dockerfile.parent / "pyproject.toml").read_text())["project"]
    assert command in project.get("scripts", {}), f"{command} is not in {dockerfile.parent.name}/pyproject.toml"
    assert (VENV_BIN / command).is_file(), f"{command} is not installed in .venv: the tests cannot run it"
