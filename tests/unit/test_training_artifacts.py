"""What a crash or an earlier attempt leaves beside a version is removed before the next one trains."""
from modelops_training import artifacts


def test_leftovers_of_crashes_earlier_attempts_and_older_versions_go_and_the_current_attempts_backup_stays(tmp_path):
    version = tmp_path / "v2"
    names = [".v2.staging-1a2b", ".v2.replaced-3c4d", ".v2.attempt-1.backup", ".v2.attempt-2.backup",
             ".v2.attempt-3.backup", ".v1.replaced-5e6f", ".v1.attempt-2.backup", ".v1.staging-7a8b",
             ".v12.attempt-3.backup", "v1", "feedback"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("x")
    artifacts.remove_leftovers(version, attempt=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".v2.attempt-3.backup", "feedback", "v1"]
