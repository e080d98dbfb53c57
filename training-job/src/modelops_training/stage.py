"""What every stage shares: turning the outcome (or the failure) of its work into a StageReport."""
from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from modelops_contracts.jobconfig import JobConfig
from modelops_contracts.report import StageReport

from . import artifacts
from .errors import StageError, Terminated

log = logging.getLogger("modelops.stage")
UNEXPECTED_REASON = {"train": "TrainingFailed", "compress": "CompressionFailed"}


def run_stage(stage: str, config: JobConfig, work: Callable[[JobConfig], StageReport]) -> StageReport:
    started = time.monotonic()
    stopped: list[Terminated] = []
    try:
        with _stop_on_sigterm(stage, config, stopped):
            report = work(config)
    except Exception as e:  # a failure the operator must see, not a crash
        report = _failed(stage, config, e, stopped)
    return dataclasses.replace(report, duration_seconds=round(time.monotonic() - started, 3))


def _failed(stage: str, config: JobConfig, error: Exception, stopped: list[Terminated]) -> StageReport:
    if stopped:   # TensorFlow re-raises what the handler raised inside its own calls as another error
        return failure(stage, config, Terminated.reason, str(stopped[0]))
    if isinstance(error, StageError):
        return dataclasses.replace(failure(stage, config, error.reason, str(error)), compression=error.compression)
    log.error("%s failed unexpectedly:\n%s", stage, traceback.format_exc())
    first_line = (str(error).strip().splitlines() or [""])[0]
    return failure(stage, config, UNEXPECTED_REASON[stage], f"{stage}: {type(error).__name__}: {first_line}")


def failure(stage: str, config: JobConfig, reason: str, message: str) -> StageReport:
    log.error("%s failed (%s): %s", stage, reason, message)
    return StageReport(stage=stage, succeeded=False, version=config.model.version, attempt=config.training.attempt,
                       metric=config.metric, reason=reason, message=message)


def stop_once(stopped: list[Terminated], message: str) -> Callable[[int, Any], None]:
    """A SIGTERM handler raising Terminated(message) and keeping it in `stopped` (TensorFlow may re-raise it as
    an error of its own, so the caller asks `stopped`, not the exception). One is enough: it ignores the
    signals after it, which must not interrupt the unwinding or the report."""
    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopped.append(Terminated(message))
        raise stopped[0]
    return stop


@contextmanager
def _stop_on_sigterm(stage: str, config: JobConfig, stopped: list[Terminated]) -> Iterator[None]:
    """Turn SIGTERM into a Terminated failure while the stage works.

    The entrypoint is PID 1 in its container, and the kernel drops signals PID 1 has no handler
    for: without this the kubelet's SIGTERM is ignored and the pod lives out its grace period.
    Raising unwinds training without publishing; the attempt's backup on the storage stays.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if stage == "train":
        kept = f"; the last backup in {artifacts.backup_dir(config.version_dir, config.training.attempt)} is kept"
    else:
        kept = ""

    previous = signal.signal(signal.SIGTERM, stop_once(
        stopped, f"{stage}: stopped by SIGTERM (the pod is being deleted or evicted){kept}"))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
