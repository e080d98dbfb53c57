"""The suite itself: one pytest session collects every folder, so no two test files may share a name."""
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_files_share_a_basename():
    """Without packages, pytest imports test files by basename: a second one aborts the whole collection
    ("import file mismatch"), which a run of one folder never shows."""
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if ".venv" not in p.parts)
    assert [n for n, count in names.items() if count > 1] == []
