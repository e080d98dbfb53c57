"""Stage failures: each kind maps to one reason and exit code of the stage report contract."""
from __future__ import annotations


class StageError(Exception):
    """A failure that ends the stage with a one-line message for people."""
    reason = "TrainingFailed"   # one of the stage report's reasons; the CLI exits with its code


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


class WorkersNotStarted(StageError):
    """A multi-worker peer never came up (unschedulable, image not pulled): waiting longer would hang."""
    reason = "WorkersNotStarted"


class GPUUnavailable(StageError):
    """GPUs were requested but TensorFlow sees none (no driver, no CUDA libraries in the image)."""
    reason = "GPUUnavailable"
