"""The entrypoint as PID 1: wherever a SIGTERM lands, the trainer reports Terminated and exits 143."""
import json
import os
import signal

import pytest
from modelops_contracts import jobconfig, report

from modelops_training import cli


@pytest.fixture(autouse=True)
def sigterm_handler_restored():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps({
        "apiVersion": "modelops.io/v1alpha1", "kind": "JobConfig", "stage": "train", "metric": "accuracy",
        "model": {"namespace": "ml", "name": "m", "version": "v3", "template": "mlp-classifier"},
        "data": {"uri": "builtin:digits"}, "storageRoot": str(tmp_path / "store"),
        "reportPath": str(tmp_path / "report.json")}))
    return path


def sigterm_self(*_):
    os.kill(os.getpid(), signal.SIGTERM)
    raise AssertionError("the handler must have raised")


def test_sigterm_while_the_arguments_are_parsed_is_reported(monkeypatch, tmp_path, capsys):
    """Seen in CI: the signal landed inside argparse, before the old handler's try, and the trainer died with 1."""
    monkeypatch.setattr(jobconfig, "DEFAULT_REPORT_PATH", str(tmp_path / "default-report.json"))
    monkeypatch.setattr(cli, "_parse", sigterm_self)

    assert cli._run("train", "modelops-train", [], cli._train) == report.EXIT_TERMINATED
    result = report.decode(capsys.readouterr().out)
    assert (result.reason, result.version) == ("Terminated", "")
    assert result.message.startswith("train: stopped by SIGTERM while starting")
    assert report.decode((tmp_path / "default-report.json").read_text()) == result


def test_sigterm_while_tensorflow_imports_reports_the_version(config_file, capsys):
    assert cli._run("train", "modelops-train", ["--config", str(config_file)], sigterm_self) == report.EXIT_TERMINATED
    result = report.decode(capsys.readouterr().out)
    assert (result.reason, result.version) == ("Terminated", "v3")


def test_a_second_sigterm_does_not_interrupt_the_report_of_the_first(config_file, capsys):
    """The kubelet sends one, but a user's `kill` loop or a shell may send more."""
    def stage_signalled_twice():
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("the handler must have raised")

    def work():
        try:
            return stage_signalled_twice()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)   # arrives while the first one unwinds

    assert cli._run("train", "modelops-train", ["--config", str(config_file)], work) == report.EXIT_TERMINATED
    assert report.decode(capsys.readouterr().out).reason == "Terminated"


def test_a_stage_that_finished_keeps_its_report_when_sigterm_follows(config_file, capsys):
    finished = report.StageReport(stage="train", succeeded=True, version="v3")

    def run(config):
        return finished

    assert cli._run("train", "modelops-train", ["--config", str(config_file)], lambda: run) == 0
    assert report.decode(capsys.readouterr().out) == finished
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN, "past the report, a late SIGTERM changes nothing"


def test_sigterm_that_an_import_rewraps_as_its_own_error_is_still_terminated(config_file, capsys):
    """The stage's lesson, again at start-up: TensorFlow's import turns what it catches into ImportError."""
    def work():
        try:
            sigterm_self()
        except Exception as e:
            raise ImportError(f"Failed to load the native TensorFlow runtime: {e}") from None

    assert cli._run("train", "modelops-train", ["--config", str(config_file)], work) == report.EXIT_TERMINATED
    assert report.decode(capsys.readouterr().out).reason == "Terminated"


def test_a_bad_config_is_reported_and_an_unexpected_error_is_not_hidden(tmp_path, config_file, capsys):
    bad = tmp_path / "empty.json"
    bad.write_text("{}")
    args = ["--config", str(bad), "--report-path", str(tmp_path / "r.json")]
    assert cli._run("train", "modelops-train", args, cli._train) == report.EXIT_BAD_CONFIG
    assert report.decode(capsys.readouterr().out).reason == "BadConfig"

    def broken():
        raise RuntimeError("a bug, not a stop")
    with pytest.raises(RuntimeError, match="a bug"):
        cli._run("train", "modelops-train", ["--config", str(config_file)], broken)
