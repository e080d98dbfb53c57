"""Cache keys for the locally built images: a hash of everything a build reads, so an unchanged input set
reuses the archive and any change (Dockerfile, a copied file, the lock, the base image, the scripts) rebuilds.

Pure functions first; the command line at the bottom only reads files and prints a key. Standard library only:
it runs with the host's python3 before any virtual environment exists.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

KEY_LENGTH = 20


def combine(parts: Mapping[str, str]) -> str:
    """The key of named inputs (file digests, settings): independent of order, sensitive to names and values."""
    text = "".join(f"{json.dumps(name)}={json.dumps(value)}\n" for name, value in sorted(parts.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def file_digest(content: bytes, executable: bool) -> str:
    # COPY keeps the mode, so a chmod +x alone changes the image.
    return hashlib.sha256(content).hexdigest() + (":x" if executable else "")


def _logical_lines(dockerfile: str) -> Iterable[str]:
    joined = ""
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if not joined and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            joined += stripped[:-1] + " "
            continue
        yield joined + stripped
        joined = ""
    if joined:
        yield joined


def copy_sources(dockerfile: str) -> list[str]:
    """The build-context paths the Dockerfile's COPY/ADD instructions read (COPY --from reads no context)."""
    sources: list[str] = []
    for line in _logical_lines(dockerfile):
        instruction, _, rest = line.partition(" ")
        if instruction.upper() not in ("COPY", "ADD"):
            continue
        rest = rest.strip()
        if rest.startswith("["):
            words = json.loads(rest)
        else:
            words = shlex.split(rest)
            flags = [w for w in words if w.startswith("--")]
            if any(f.startswith("--from") for f in flags):
                continue
            words = [w for w in words if not w.startswith("--")]
        if len(words) < 2:
            raise ValueError(f"{instruction} needs a source and a destination: {line!r}")
        sources.extend(words[:-1])
    return sources


def ignore_patterns(dockerignore: str) -> list[tuple[bool, re.Pattern[str]]]:
    """The .dockerignore rules in order, as (exclude?, regex): `!` re-includes, `*` stays within one
    directory, `**` spans any number of them (the Docker/BuildKit pattern syntax)."""
    rules = []
    for raw in dockerignore.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((exclude, re.compile(_glob_regex(pattern))))
    return rules


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
    return "".join(out) + r"\Z"


def is_ignored(path: str, rules: Iterable[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build leaves a context-relative file out: the last rule matching the file or one of its
    parent directories decides."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for exclude, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = exclude
    return ignored


def ignore_file(dockerfile: Path, context: Path) -> Path | None:
    """The ignore file a build uses: DOCKERFILE.dockerignore beside the Dockerfile, else the context's."""
    for candidate in (dockerfile.parent / f"{dockerfile.name}.dockerignore", context / ".dockerignore"):
        if candidate.is_file():
            return candidate
    return None


def context_files(context: Path, sources: Iterable[str], rules: list[tuple[bool, re.Pattern[str]]]) -> dict[str, str]:
    """Digest of every file the sources name in the build context, minus the ignored ones."""
    digests: dict[str, str] = {}
    for source in sources:
        root = context / source
        if not root.exists():
            raise FileNotFoundError(f"COPY source {source!r} is not in the build context {context}")
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            relative = path.relative_to(context).as_posix()
            if path.is_dir() or is_ignored(relative, rules):
                continue
            if path.is_symlink():
                digests[relative] = "link:" + str(path.readlink())
            else:
                digests[relative] = file_digest(path.read_bytes(), bool(path.stat().st_mode & 0o111))
    return digests


def image_key(dockerfile: str, files: Mapping[str, str], values: Mapping[str, str]) -> str:
    """The key of one image build: its Dockerfile, the digests of the files it copies, and settings (base, ref)."""
    parts = {f"file:{name}": digest for name, digest in files.items()}
    parts |= {f"value:{name}": value for name, value in values.items()}
    parts["dockerfile"] = hashlib.sha256(dockerfile.encode()).hexdigest()
    return combine(parts)


def _values(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--value {pair!r}: expected NAME=VALUE")
        values[name] = value
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    files = sub.add_parser("files", help="key of some files (paths relative to --root) and NAME=VALUE settings")
    files.add_argument("paths", nargs="+", type=Path)
    image = sub.add_parser("image", help="key of a Dockerfile build in a context")
    image.add_argument("dockerfile", type=Path)
    image.add_argument("--context", type=Path, required=True)
    image.add_argument("--extra", type=Path, action="append", default=[], help="another input file (a script)")
    for command in (files, image):
        command.add_argument("--value", action="append", default=[], help="NAME=VALUE setting of the build")
        command.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args(argv)
    read = {p.resolve().relative_to(args.root.resolve()).as_posix(): p for p in getattr(args, "paths", [])}
    read |= {p.resolve().relative_to(args.root.resolve()).as_posix(): p for p in getattr(args, "extra", [])}
    digests = {name: file_digest(p.read_bytes(), bool(p.stat().st_mode & 0o111)) for name, p in read.items()}
    values = _values(args.value)
    if args.command == "files":
        print(combine({f"file:{n}": d for n, d in digests.items()} | {f"value:{n}": v for n, v in values.items()}))
        return 0
    dockerfile = args.dockerfile.read_text()
    ignore = ignore_file(args.dockerfile, args.context)
    rules = ignore_patterns(ignore.read_text()) if ignore else []
    copied = context_files(args.context, copy_sources(dockerfile), rules)
    print(image_key(dockerfile, copied | {f"extra:{n}": d for n, d in digests.items()}, values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
