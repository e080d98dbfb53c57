"""Collected feedback: the segment files serving replicas write and the trainer reads.

Layout: every replica of a model writes into the model's one feedback directory
(`feedback_dir`: `<storage>/<namespace>/<name>/<uid>/feedback/`), one file per segment, named
`seg-<unix ms, 16 digits>-<replica>-<sequence, 6 digits>.jsonl` so names sort by the time they
were written whoever wrote them (the oldest go first when the disk cap is reached). A segment is
written to a dot-prefixed temporary name and renamed: a reader sees a whole segment or none, and
skips dot files.

A segment is JSON Lines: a header line (`kind: FeedbackSegment`, the writer, how many records
follow) then one record per line. A record is one prediction request joined with its truth:
`inputs` maps each input tensor to its rows, `prediction` holds the rows of the first output,
`truth` one value per row (a class label as the client named it, or a number). A truth whose
prediction another replica answered and that could not be reached is kept unjoined
(`joined: false`, `inputs` empty, `prediction` None): it counts for nothing in training.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from . import API_VERSION
from .manifest import atomic_write_text

KIND = "FeedbackSegment"
DIRNAME = "feedback"
SUFFIX = ".jsonl"
_NAME = re.compile(r"^seg-(\d{16})-([A-Za-z0-9_.-]+)-(\d{6})\.jsonl$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class SegmentError(ValueError):
    """A segment that cannot be read; the message names the file and line."""


def feedback_dir(storage_root: str | Path, namespace: str, name: str, uid: str | None = None) -> Path:
    """The model's feedback directory, beside its versions (`version_dir` with `feedback` for a version)."""
    return Path(storage_root) / namespace / name / (uid or "") / DIRNAME


@dataclass(frozen=True)
class FeedbackRecord:
    prediction_id: str
    version: str
    inputs: dict[str, list] = field(default_factory=dict)   # input name -> rows
    prediction: list | None = None                          # rows of the first output
    truth: list = field(default_factory=list)               # one value per row
    time: float = 0.0                                       # unix seconds the truth arrived
    joined: bool = True

    @property
    def rows(self) -> int:
        return len(self.truth)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.prediction_id, "version": self.version, "inputs": self.inputs,
                "prediction": self.prediction, "truth": self.truth, "time": self.time, "joined": self.joined}

    @classmethod
    def from_dict(cls, d: Any) -> "FeedbackRecord":
        if not isinstance(d, Mapping):
            raise ValueError("expected a record object")
        pid, version, inputs, truth = d.get("id"), d.get("version"), d.get("inputs"), d.get("truth")
        prediction, time, joined = d.get("prediction"), d.get("time"), d.get("joined", True)
        if not isinstance(pid, str) or not pid:
            raise ValueError(f"id: expected a non-empty string, got {pid!r}")
        if not isinstance(version, str):
            raise ValueError(f"version: expected a string, got {version!r}")
        if not isinstance(truth, list) or not truth:
            raise ValueError(f"truth: expected a non-empty list, got {truth!r}")
        if not isinstance(joined, bool):
            raise ValueError(f"joined: expected true or false, got {joined!r}")
        if not isinstance(inputs, Mapping) or (joined and not inputs):
            raise ValueError(f"inputs: expected an object of input name -> rows, got {inputs!r}")
        for name, rows in inputs.items():
            if not isinstance(rows, list) or len(rows) != len(truth):
                raise ValueError(f"inputs.{name}: expected {len(truth)} rows (one per truth)")
        if prediction is not None and (not isinstance(prediction, list) or len(prediction) != len(truth)):
            raise ValueError(f"prediction: expected {len(truth)} rows (one per truth)")
        if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time):
            raise ValueError(f"time: expected unix seconds, got {time!r}")
        return cls(prediction_id=pid, version=version, inputs=dict(inputs), prediction=prediction,
                   truth=list(truth), time=float(time), joined=joined)


def segment_name(replica: str, sequence: int, unix_ms: int) -> str:
    return f"seg-{unix_ms:016d}-{_UNSAFE.sub('_', replica) or '_'}-{sequence:06d}{SUFFIX}"


def write_segment(directory: str | Path, replica: str, sequence: int, unix_ms: int,
                  records: Sequence[FeedbackRecord]) -> Path:
    """Write `records` as one segment, atomically; returns its path. Raises ValueError on a
    non-finite number (JSON has none, and a reader could not trust it)."""
    directory = Path(directory)
    header = {"apiVersion": API_VERSION, "kind": KIND, "replica": replica, "sequence": sequence,
              "records": len(records)}
    lines = [json.dumps(header, allow_nan=False)]
    lines += [json.dumps(r.to_dict(), allow_nan=False, separators=(",", ":")) for r in records]
    path = directory / segment_name(replica, sequence, unix_ms)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def written_at(path: str | Path) -> int:
    """The unix milliseconds a segment's name says it was written at."""
    match = _NAME.match(Path(path).name)
    if match is None:
        raise SegmentError(f"{path}: not a segment name")
    return int(match.group(1))


def list_segments(directory: str | Path) -> list[Path]:
    """The directory's segments, oldest first; temporaries and foreign files are not segments."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name) and p.is_file())


def read_segment(path: str | Path) -> list[FeedbackRecord]:
    """Every record of one segment; SegmentError names the file and line of the first problem."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise SegmentError(f"{path}: cannot be read ({e})") from None
    if not lines:
        raise SegmentError(f"{path}: empty, no {KIND} header")
    header = _json_line(path, 1, lines[0])
    if not isinstance(header, Mapping) or header.get("kind") != KIND or header.get("apiVersion") != API_VERSION:
        raise SegmentError(f"{path}:1: not a {KIND} header of {API_VERSION}")
    count = header.get("records")
    if count != len(lines) - 1:
        raise SegmentError(f"{path}: header says {count!r} records, the file holds {len(lines) - 1}")
    records = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            records.append(FeedbackRecord.from_dict(_json_line(path, number, line)))
        except ValueError as e:
            if isinstance(e, SegmentError):
                raise
            raise SegmentError(f"{path}:{number}: {e}") from None
    return records


def _json_line(path: Path, number: int, line: str) -> Any:
    try:
        return json.loads(line, parse_constant=lambda c: _refuse_constant(path, number, c))
    except json.JSONDecodeError as e:
        raise SegmentError(f"{path}:{number}: not JSON ({e.msg})") from None


def _refuse_constant(path: Path, number: int, constant: str):
    raise SegmentError(f"{path}:{number}: {constant} is not a number a segment may hold")


def read_segments(directory: str | Path) -> Iterator[tuple[Path, list[FeedbackRecord]]]:
    """(path, records) of each segment, oldest first. A segment removed meanwhile (a replica pruning the
    oldest under its disk cap) is skipped: it was never promised to the reader."""
    for path in list_segments(directory):
        try:
            records = read_segment(path)
        except FileNotFoundError:
            continue
        yield path, records
