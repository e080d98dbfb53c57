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
from .stage import failure


def _parse(prog: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=jobconfig.DEFAULT_CONFIG_PATH,
                        help=f"job config file, JSON or YAML (default {jobconfig.DEFAULT_CONFIG_PATH})")
    parser.add_argument("--report-path", help="where to write the stage report (default: the config's reportPath)")
    return parser.parse_args(argv)


def _stop_while_starting(signum, frame) -> None:
    raise Terminated("stopped by SIGTERM while starting (the pod is being deleted or evicted)")


def _run(stage: str, prog: str, argv: list[str] | None, work: Callable[[], Callable]) -> int:
    # PID 1 in a container: the kernel drops a signal it has no handler for, so one is in place before
    # the seconds of importing TensorFlow (the stage installs its own once it runs).
    signal.signal(signal.SIGTERM, _stop_while_starting)
    args = _parse(prog, argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)   # per-checkpoint chatter from BackupAndRestore
    try:
        config = jobconfig.load(args.config)
    except jobconfig.ConfigError as e:
        result = StageReport(stage=stage, succeeded=False, version="", reason="BadConfig", message=str(e))
        report_path = args.report_path or jobconfig.DEFAULT_REPORT_PATH
    else:
        report_path = args.report_path or config.report_path
        try:
            run = work()   # imported late: TensorFlow takes seconds to import, --help should not
        except Terminated as e:
            result = failure(stage, config, e.reason, f"{stage}: {e}")
        else:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)   # the stage takes over SIGTERM while it works
            result = run(config)
    print(report.write(result, report_path), flush=True)
    return result.exit_code


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
