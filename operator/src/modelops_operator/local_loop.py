"""`modelops run FILE --keep-serving`: serve until Ctrl-C, and with spec.monitoring on, close the loop.

The operator's own pure policies, on one machine: each monitoring period `monitoring.decide` judges
the served version's live figures (its server's /v1/live); a Retrain trains the next version on the
original data plus the feedback the servers kept, as the operator does. With spec.serving.rollout
Canary the new version then serves beside the stable one behind the local Service (connections split
by the replica ratio) until `canary.judge` promotes or aborts it; with Replace it takes over at once.
Each verdict is printed when it changes.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Callable

from modelops_contracts import manifest as manifest_contract
from modelops_contracts.live import LiveError, LiveFigures

from . import canary, monitoring
from .local_run import LocalRun, RunError, Server, say
from .local_service import LocalService

POLL_S = 1.0


def read_live(server: Server) -> LiveFigures | None:
    """The server's figures, or None when it does not answer with valid ones (the policy's 'no figures')."""
    try:
        with urllib.request.urlopen(f"{server.url}/v1/live", timeout=5) as r:
            return LiveFigures.from_dict(json.loads(r.read()))
    except (urllib.error.URLError, OSError, ValueError, LiveError):
        return None


class QualityLoop:
    def __init__(self, run: LocalRun, service: LocalService, stable: Server,
                 clock: Callable[[], float] = time.time):
        self.run, self.service, self.stable = run, service, stable
        self.canary: Server | None = None
        self.monitoring = monitoring.Monitoring.of(run.spec)
        self.rollout = run.spec.rollout
        self.retrains: list[float] = []
        self.clock = clock
        self._said: tuple[str, str] = ("", "")

    def step(self) -> None:
        """One monitoring period: judge the canary if one is running, else the served version."""
        if self.canary is not None:
            self._judge_canary()
            return
        now = self.clock()
        decision = monitoring.decide(self.monitoring, read_live(self.stable), now=now, retrains=self.retrains)
        # Said when the verdict changes, not each period: figures that merely move are no news.
        self._say_once((self.stable.version, decision.reason),
                       f"live {self.stable.version}: {decision.reason}: {decision.message}")
        if decision.action == monitoring.RETRAIN:
            self.retrains.append(now)
            self._retrain(now)

    def _retrain(self, now: float) -> None:
        try:
            version, _, _, servable = self.run.pipeline(feedback_before_ms=int(now * 1000))
            new = self.run.serve(self.run.model_root / version, servable)
        except (RunError, manifest_contract.ManifestError) as e:
            say(f"==> the retrain failed; {self.stable.version} keeps serving: {e}")
            return
        if self.rollout.canary:
            self.canary = new
            self.service.route({self.stable.port: self.run.spec.replicas, new.port: self.rollout.replicas})
            say(f"==> canary {new.version} beside {self.stable.version}: {self.rollout.replicas} of "
                f"{self.run.spec.replicas + self.rollout.replicas} shares of the connections")
        else:
            self._take_over(new, "replaces")

    def _judge_canary(self) -> None:
        assert self.canary is not None
        age = self.clock() - self.canary.ready_at
        verdict = canary.judge(self.rollout, read_live(self.canary), read_live(self.stable),
                               ready_for_s=age, age_s=age)
        self._say_once((self.canary.version, verdict.message),   # a canary's progress is news
                       f"canary {self.canary.version}: {verdict.reason}: {verdict.message}")
        if verdict.action == canary.PROMOTE:
            self._take_over(self.canary, "promoted over")
        elif verdict.action == canary.ABORT:
            rejected, self.canary = self.canary, None
            self.service.route({self.stable.port: 1})
            self.run.processes.stop(rejected.process)
            say(f"==> canary {rejected.version} aborted and rejected; {self.stable.version} keeps serving")

    def _take_over(self, new: Server, how: str) -> None:
        """New connections go to the new version at once; the old server drains what it holds, then stops."""
        old, self.stable, self.canary = self.stable, new, None
        self.service.route({new.port: 1})
        self.run.processes.stop(old.process)
        say(f"==> {new.version} {how} {old.version}; serving {new.version}")

    def _say_once(self, key: tuple[str, str], line: str) -> None:
        if key != self._said:
            say(f"[{time.strftime('%H:%M:%S')}] {line}")
            self._said = key


def keep_serving(run: LocalRun, service: LocalService, stable: Server) -> None:
    """Until Ctrl-C (KeyboardInterrupt) or a server's exit; monitoring each period when the spec turns it on."""
    loop = QualityLoop(run, service, stable) if run.spec.monitoring_enabled else None
    if loop:
        say(f"monitoring {run.spec.metric} every {run.spec.monitoring_period_s} s "
            f"(threshold {loop.monitoring.threshold_text} over {loop.monitoring.min_pairs} labeled pairs)")
    say(f"serving on {service.url}; Ctrl-C to stop")
    next_check = time.monotonic() + run.spec.monitoring_period_s
    while True:
        for server in (loop.stable, loop.canary) if loop else (stable,):
            if server is not None and server.process.poll() is not None:
                if server.process.returncode:
                    raise RunError(f"modelops-serve for {server.version} exited with code {server.process.returncode}")
                return
        if loop and time.monotonic() >= next_check:
            loop.step()
            next_check = time.monotonic() + run.spec.monitoring_period_s
        time.sleep(POLL_S)
