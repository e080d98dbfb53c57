"""What every stage shares: turning the outcome (or the failure) of its work into a StageReport."""
from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from typing import Callable

from modelops_contracts.jobconfig import JobConfig
from modelops_contracts.report import StageReport

from .errors import StageError

log = logging.getLogger("modelops.stage")
UNEXPECTED_REASON = {"train": "TrainingFailed", "compress": "CompressionFailed"}


def run_stage(stage: str, config: JobConfig, work: Callable[[JobConfig], StageReport]) -> StageReport:
    started = time.monotonic()
    try:
        report = work(config)
    except StageError as e:
        report = failure(stage, config, e.reason, str(e))
    except Exception as e:  # anything else is still a stage failure the operator must see, not a crash
        log.error("%s failed unexpectedly:\n%s", stage, traceback.format_exc())
        first_line = (str(e).strip().splitlines() or [""])[0]
        report = failure(stage, config, UNEXPECTED_REASON[stage], f"{stage}: {type(e).__name__}: {first_line}")
    return dataclasses.replace(report, duration_seconds=round(time.monotonic() - started, 3))


def failure(stage: str, config: JobConfig, reason: str, message: str) -> StageReport:
    log.error("%s failed (%s): %s", stage, reason, message)
    return StageReport(stage=stage, succeeded=False, version=config.model.version, attempt=config.training.attempt,
                       metric=config.metric, reason=reason, message=message)
