"""The locally built images (hack/images/): Dockerfiles that take the base as a build argument, install under
the lock, keep pip's cache and settings out of the image and run as a numeric non-root user; and the cache
key that decides whether a build is skipped, which must change whenever anything the build reads changes."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from hack.images import image_key

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(p for p in REPO_ROOT.glob("*/Dockerfile*") if not p.name.endswith(".dockerignore"))
PUBLIC_BASE = "python:3.11.14-slim-bookworm"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    return [(line.split(" ", 1)[0].upper(), line.split(" ", 1)[1])
            for line in image_key._logical_lines(dockerfile.read_text())]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_the_base_is_a_build_argument_defaulting_to_the_public_image(dockerfile):
    steps = instructions(dockerfile)
    first_from = next(i for i, (name, _) in enumerate(steps) if name == "FROM")
    assert ("ARG", f"BASE_IMAGE={PUBLIC_BASE}") in steps[:first_from]
    assert [args for name, args in steps if name == "FROM"] == ["${BASE_IMAGE}"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dependencies_install_with_the_lock_as_constraints(dockerfile):
    package = dockerfile.parent.name
    runs = [args for name, args in instructions(dockerfile) if name == "RUN"]
    assert any(re.search(rf"pip install -c requirements\.lock -r {package}/requirements(-gpu)?\.txt$", r) for r in runs)
    assert "requirements.lock" in image_key.copy_sources(dockerfile.read_text())
    rules = image_key.ignore_patterns(image_key.ignore_file(dockerfile, REPO_ROOT).read_text())
    assert not image_key.is_ignored("requirements.lock", rules), "the ignore file keeps the lock out of the build"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_pip_step_mounts_the_cache_and_settings_instead_of_baking_them(dockerfile):
    # build-image.sh builds offline: pip finds the wheelhouse through the pip.conf secret and the cache mount.
    pip_runs = [args for name, args in instructions(dockerfile) if name == "RUN" and "pip install" in args]
    assert pip_runs
    for run in pip_runs:
        assert "--mount=type=cache,id=modelops-pip,target=/root/.cache/pip" in run
        assert "--mount=type=secret,id=pip.conf,target=/etc/pip.conf" in run
    assert not any(name in ("ENV", "ARG") and "PIP_CONFIG_FILE" in args for name, args in instructions(dockerfile))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_the_image_runs_as_a_numeric_non_root_user(dockerfile):
    users = [args for name, args in instructions(dockerfile) if name == "USER"]
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0 and int(gid) != 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_the_key_covers_the_lock_and_the_package_but_not_its_benchmarks_or_caches(dockerfile):
    rules = image_key.ignore_patterns(image_key.ignore_file(dockerfile, REPO_ROOT).read_text())
    files = image_key.context_files(REPO_ROOT, image_key.copy_sources(dockerfile.read_text()), rules)
    package = dockerfile.parent.name
    assert "requirements.lock" in files and f"{package}/requirements.txt" in files
    assert any(name.startswith(f"{package}/src/") and name.endswith(".py") for name in files)
    assert any(name.startswith("contracts/src/") for name in files)
    assert not any("__pycache__" in name or ".egg-info" in name or "/bench/" in name for name in files)


def test_copy_sources_reads_flags_json_form_and_continuations_and_skips_other_stages():
    dockerfile = ("FROM x AS build\n# COPY ignored comment\nCOPY --chown=1:1 a b/ dest/\n"
                  'COPY ["c d", "e"]\nCOPY --from=build /out /out\nADD f \\\n    g\nRUN echo COPY h i\n')
    assert image_key.copy_sources(dockerfile) == ["a", "b/", "c d", "f"]


def test_copy_without_a_destination_is_refused():
    with pytest.raises(ValueError, match="source and a destination"):
        image_key.copy_sources("COPY onlyone\n")


def test_ignore_rules_follow_docker_the_last_matching_rule_decides():
    rules = image_key.ignore_patterns("# comment\n*\n!pkg/src/\n!requirements.lock\n**/__pycache__\n**/*.egg-info\n")
    assert not image_key.is_ignored("pkg/src/mod/a.py", rules)
    assert not image_key.is_ignored("requirements.lock", rules)
    assert image_key.is_ignored("pkg/bench/b.py", rules)
    assert image_key.is_ignored("pkg/src/mod/__pycache__/a.cpython-311.pyc", rules)
    assert image_key.is_ignored("pkg/src/x.egg-info/PKG-INFO", rules)
    assert image_key.is_ignored("README.md", rules)
    assert not image_key.is_ignored("README.md", image_key.ignore_patterns("*.txt\n"))
    assert image_key.is_ignored("notes/a.txt", image_key.ignore_patterns("**/*.txt\n"))
    assert not image_key.is_ignored("notes/a.txt", image_key.ignore_patterns("*.txt\n"))


BASE_INPUTS = {"dockerfile": "FROM ${BASE_IMAGE}\nCOPY a a\n",
               "files": {"a/x.py": image_key.file_digest(b"print(1)", False)},
               "values": {"base": "sha256:1", "ref": "r/x:1"}}


def key(dockerfile=BASE_INPUTS["dockerfile"], files=BASE_INPUTS["files"], values=BASE_INPUTS["values"]):
    return image_key.image_key(dockerfile, files, values)


def test_the_key_is_stable_and_independent_of_order():
    files = {"b": "1", "a": "2"}
    assert key(files=files) == key(files=dict(reversed(files.items())))
    assert key() == key() and re.fullmatch(r"[0-9a-f]{20}", key())


@pytest.mark.parametrize("change", [
    {"dockerfile": "FROM ${BASE_IMAGE}\nCOPY a a\nUSER 1:1\n"},
    {"files": {"a/x.py": image_key.file_digest(b"print(2)", False)}},
    {"files": {"a/x.py": image_key.file_digest(b"print(1)", True)}},
    {"files": {"a/y.py": image_key.file_digest(b"print(1)", False)}},
    {"files": {**BASE_INPUTS["files"], "a/new.py": image_key.file_digest(b"", False)}},
    {"values": {"base": "sha256:2", "ref": "r/x:1"}},
    {"values": {"base": "sha256:1", "ref": "r/x:2"}},
], ids=["dockerfile", "content", "mode", "renamed", "added", "base", "ref"])
def test_the_key_changes_with_every_input(change):
    assert key(**change) != key()


def test_an_ignored_file_does_not_change_the_key_a_copied_one_does(tmp_path):
    (tmp_path / "pkg" / "src").mkdir(parents=True)
    (tmp_path / "pkg" / "src" / "m.py").write_text("x = 1\n")
    rules = image_key.ignore_patterns("**/__pycache__\n")

    def context_key() -> str:
        return key(files=image_key.context_files(tmp_path, ["pkg"], rules))

    before = context_key()
    (tmp_path / "pkg" / "src" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "src" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    assert context_key() == before
    (tmp_path / "pkg" / "src" / "m.py").write_text("x = 2\n")
    assert context_key() != before


def test_a_missing_copy_source_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="'nowhere'"):
        image_key.context_files(tmp_path, ["nowhere"], [])


def test_the_command_line_key_follows_the_dockerfile_and_the_base(tmp_path, capsys):
    dockerfile = REPO_ROOT / "serving-image" / "Dockerfile"

    def cli(*extra: str) -> str:
        image_key.main(["image", str(dockerfile), "--context", str(REPO_ROOT), *extra])
        return capsys.readouterr().out.strip()

    assert cli("--value", "base=a") == cli("--value", "base=a") != cli("--value", "base=b")
    copy = tmp_path / "Dockerfile"
    copy.write_text(dockerfile.read_text() + "# a comment changes the Dockerfile too\n")
    (tmp_path / "Dockerfile.dockerignore").write_text((dockerfile.parent / "Dockerfile.dockerignore").read_text())
    image_key.main(["image", str(copy), "--context", str(REPO_ROOT), "--value", "base=a"])
    assert capsys.readouterr().out.strip() != cli("--value", "base=a")
