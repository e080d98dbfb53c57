"""Every stage failure maps to a reason (and so an exit code) of the stage report contract."""
import pytest
from modelops_contracts import report

from modelops_training import errors


@pytest.mark.parametrize("kind, code", [
    (errors.BadConfig, report.EXIT_BAD_CONFIG), (errors.BadData, report.EXIT_BAD_DATA),
    (errors.TrainingFailed, report.EXIT_TRAINING_FAILED), (errors.StorageError, report.EXIT_STORAGE_ERROR),
    (errors.CompressionFailed, report.EXIT_COMPRESSION_FAILED),
    (errors.WorkersNotStarted, report.EXIT_WORKERS_NOT_STARTED), (errors.GPUUnavailable, report.EXIT_GPU_UNAVAILABLE),
])
def test_each_failure_kind_has_its_contract_exit_code(kind, code):
    assert report.EXIT_CODE_BY_REASON[kind.reason] == code
