"""`modelops-train` and `modelops-compress`: read the job config, run the stage, report, exit with its code.

The report goes to stdout and to the config's reportPath (the pod's termination message); logs go to
stderr so stdout stays one JSON document.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Callable

from modelops_contracts import jobconfig, report
from modelops_contracts.report import StageReport

from .errors import Terminated
from .stage import failure, stop_once


def _parse(prog: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=jobconfig.DEFAULT_CONFIG_PATH,
                        help=f"job config file, JSON or YAML (default {jobconfig.DEFAULT_CONFIG_PATH})")
    parser.add_argument("--report-path", help="where to write the stage report (default: the config's reportPath)")
    return parser.parse_args(argv)


def _run(stage: str, prog: str, argv: list[str] | None, work: Callable[[], Callable]) -> int:
    # PID 1 in a container: the kernel drops a signal it has no handler for, so one is in place before
    # the seconds of importing TensorFlow (the stage installs its own while it works). Everything after
    # it sits in the try, wherever the signal lands.
    stopped: list[Terminated] = []
    signal.signal(signal.SIGTERM, stop_once(
        stopped, f"{stage}: stopped by SIGTERM while starting (the pod is being deleted or evicted)"))
    report_path, config, result = jobconfig.DEFAULT_REPORT_PATH, None, None
    try:
        args = _parse(prog, argv)
        report_path = args.report_path or report_path
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("absl").setLevel(logging.WARNING)   # per-checkpoint chatter from BackupAndRestore
        config = jobconfig.load(args.config)
        report_path = args.report_path or config.report_path
        run = work()   # imported late: TensorFlow takes seconds to import, --help should not
        result = run(config)
    except Exception as e:
        result = result or _start_failure(stage, config, e, stopped)   # a finished stage keeps its report
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # the report is written whatever comes now
    print(report.write(result, report_path), flush=True)
    return result.exit_code


def _start_failure(stage: str, config: jobconfig.JobConfig | None, error: Exception,
                   stopped: list[Terminated]) -> StageReport:
    if stopped:   # an import may re-raise what the handler raised as an error of its own
        if config is None:
            return StageReport(stage=stage, succeeded=False, version="", reason=Terminated.reason,
                               message=str(stopped[0]))
        return failure(stage, config, Terminated.reason, str(stopped[0]))
    if isinstance(error, jobconfig.ConfigError):
        return StageReport(stage=stage, succeeded=False, version="", reason="BadConfig", message=str(error))
    raise error


def _train():
    from .train import train
    return train


def _compress():
    from .compress import compress
    return compress


def main_train(argv: list[str] | None = None) -> None:
    sys.exit(_run("train", "modelops-train", argv, _train))


def main_compress(argv: list[str] | None = None) -> None:
    sys.exit(_run("compress", "modelops-compress", argv, _compress))
