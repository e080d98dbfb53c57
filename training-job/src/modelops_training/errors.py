"""Stage failures: each kind maps to one reason and exit code of the stage report contract."""
from __future__ import annotations

from modelops_contracts import report


class StageError(Exception):
    """A failure that ends the stage with a one-line message for people."""
    reason = "TrainingFailed"

    @property
    def exit_code(self) -> int:
        return report.EXIT_CODE_BY_REASON[self.reason]


class BadConfig(StageError):
    reason = "BadConfig"


class BadData(StageError):
    reason = "BadData"


class TrainingFailed(StageError):
    reason = "TrainingFailed"


class StorageError(StageError):
    reason = "StorageError"


class CompressionFailed(StageError):
    reason = "CompressionFailed"
