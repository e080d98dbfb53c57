"""The quality loop on one machine, as the README shows it: `modelops run examples/digits-quality-loop.yaml
--keep-serving`, then examples/traffic.py sending inverted digits with their labels. The terminal must tell
the whole story in order: live accuracy drops → v2 trains on the kept feedback → v2 serves as a canary →
v2 is promoted on its live accuracy; and not one request of the traffic fails along the way."""
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.component, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STORY = ["live v1: QualityDropped", "==> train v2 attempt 1", "feedback: adding", "==> serve v2 (its server", "==> canary v2 beside v1",
         "canary v2: CanaryPassed", "==> v2 promoted over v1; serving v2", "live v2: QualityMet"]


class Output:
    """A process's output lines, read as they come."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(proc.stdout), daemon=True)
        self._thread.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if found := re.search(pattern, self.text):
                return found
            time.sleep(0.5)
        raise AssertionError(f"no {pattern!r} within {timeout_s} s:\n{self.text[-5000:]}")


def test_a_drop_retrains_on_feedback_and_the_canary_is_promoted_without_a_failed_request(tmp_path):
    run = subprocess.Popen([str(BIN / "modelops"), "run", str(ROOT / "examples" / "digits-quality-loop.yaml"),
                            "--storage", str(tmp_path), "--keep-serving"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = Output(run)
        url = out.wait_for(r"serving on (http://127\.0\.0\.1:\d+); Ctrl-C to stop", 300).group(1)
        traffic = subprocess.Popen([sys.executable, str(ROOT / "examples" / "traffic.py"), "--url", url,
                                    "--model", "digits", "--shift", "invert", "--rows", "100000", "--max-seconds", "420"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out.wait_for(r"live v2: QualityMet", 480)
        finally:
            traffic.send_signal(signal.SIGINT)   # stop sending; it prints its summary
            sent, _ = traffic.communicate(timeout=30)
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
    text = out.text
    positions = [text.find(step) for step in STORY]
    assert -1 not in positions and positions == sorted(positions), text[-6000:]
    assert "live v1: QualityDropped" in text and text.count("==> train v") == 2, "exactly one retrain"
    summary = json.loads(sent.strip().splitlines()[-1])
    assert summary["rows"] > 1000 and summary["joined"] == summary["rows"], sent[-3000:]
    assert set(summary["statuses"]) == {"200"}, f"a request failed: {summary}"
    assert traffic.returncode == 0
    assert run.returncode == 130 and "interrupted; stopping" in text
