"""The training image runs the same console scripts the tests run, installed from the pinned requirements."""
import json
import tomllib
from pathlib import Path

TRAINING_JOB = Path(__file__).resolve().parents[2] / "training-job"


def test_entrypoint_is_the_modelops_train_console_script():
    dockerfile = (TRAINING_JOB / "Dockerfile").read_text()
    (entry,) = [line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT")]
    assert json.loads(entry.removeprefix("ENTRYPOINT")) == ["modelops-train"]
    scripts = tomllib.loads((TRAINING_JOB / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"modelops-train": "modelops_training.cli:main_train",
                       "modelops-compress": "modelops_training.cli:main_compress"}


def test_image_installs_the_pinned_requirements_and_runs_as_non_root():
    dockerfile = (TRAINING_JOB / "Dockerfile").read_text()
    assert "pip install -c requirements.lock -r training-job/requirements.txt" in dockerfile
    assert "USER 65532:65532" in dockerfile
    pins = [line for line in (TRAINING_JOB / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)
