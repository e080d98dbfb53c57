"""Stage failures: each kind maps to one reason and exit code of the stage report contract."""
from __future__ import annotations


class StageError(Exception):
    """A failure that ends the stage with a one-line message for people."""
    reason = "TrainingFailed"   # one of the stage report's reasons; the CLI exits with its code

    def __init__(self, message: str, compression: dict | None = None):
        super().__init__(message)
        self.compression = dict(compression or {})   # what a failed compression still left in the version


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


class Terminated(StageError):
    """SIGTERM: the pod is being deleted (a superseded version) or evicted; another pod may resume."""
    reason = "Terminated"


class WorkersNotStarted(StageError):
    """A multi-worker peer never came up (unschedulable, image not pulled): waiting longer would hang."""
    reason = "WorkersNotStarted"


class GPUUnavailable(StageError):
    """GPUs were requested but TensorFlow sees none (no driver, no CUDA libraries in the image)."""
    reason = "GPUUnavailable"
