"""Thread pools follow the container's CPU limit, not the node's core count."""
import pytest

from modelops_training.acceleration import cpu_limit, threads
from modelops_training.errors import BadConfig


@pytest.mark.parametrize("cpu_max, expected", [
    ("200000 100000\n", 2), ("150000 100000", 2), ("50000 100000", 1), ("max 100000", 64), ("", 64), (None, 64),
    ("garbage", 64),
])
def test_cgroup_cpu_max(cpu_max, expected):
    assert cpu_limit(cpu_max, 64) == expected


def test_an_explicit_limit_wins_and_is_checked():
    assert threads({"MODELOPS_CPU_LIMIT": "2.5"}) == 3
    with pytest.raises(BadConfig, match="MODELOPS_CPU_LIMIT: expected a number of cores"):
        threads({"MODELOPS_CPU_LIMIT": "lots"})


def test_cgroup_v1_quota_reads_as_v2(tmp_path, monkeypatch):
    from modelops_training import acceleration
    monkeypatch.setattr(acceleration, "CGROUP_CPU_MAX", tmp_path / "missing")
    monkeypatch.setattr(acceleration, "CGROUP_V1_CPU", tmp_path)
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "cpu.cfs_quota_us").write_text("250000\n")
    assert threads({}) == 3
    (tmp_path / "cpu.cfs_quota_us").write_text("-1\n")
    assert acceleration._cgroup_cpu_max() == "max 100000"
