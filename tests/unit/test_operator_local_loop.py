"""`modelops run --keep-serving`'s loop, one period at a time: what it does on each verdict of the operator's
policies. The versions' servers are small HTTP servers answering /v1/live with set figures; the training is
the fake here (the whole loop with real training and serving: tests/component/test_local_quality_loop.py)."""
import copy
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelops_operator import local_loop
from modelops_operator.local_run import Processes, RunError, Server
from modelops_operator.local_service import LocalService
from modelops_operator.spec import parse
from operator_samples import example

NOW = 1_800_000_000.0


def figures(version: str, accuracy: float | None, pairs: int, requests: int = 200) -> dict:
    return {"kind": "LiveFigures", "version": version, "replica": f"digits-{version}", "windowSeconds": 300.0,
            "metric": "accuracy", "value": accuracy, "pairs": pairs, "requests": requests, "errors": 0,
            "latencyP99Ms": 3.0, "drift": {}, "driftScore": None}


class LiveServer:
    """Answers GET /v1/live with whatever `figures` holds now; a real process stands in for its server."""

    def __init__(self, version: str, live: dict):
        self.figures = live
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps(owner.figures).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.process = subprocess.Popen(["sleep", "600"], start_new_session=True)
        self.server = Server(version, self.process, self.http.server_address[1], NOW)

    def close(self):
        self.http.shutdown()
        self.http.server_close()


class FakeRun:
    """A LocalRun whose pipeline makes the next version at once (or fails, when told to)."""

    def __init__(self, spec, make_next):
        self.spec, self.processes, self.make_next = spec, Processes(), make_next
        self.trained_with: list[int | None] = []
        self.failure: str | None = None

    def pipeline(self, feedback_before_ms=None):
        self.trained_with.append(feedback_before_ms)
        if self.failure:
            raise RunError(self.failure)
        return "v2", None, None, "tflite"

    @property
    def model_root(self):
        return self

    def __truediv__(self, version):
        return version

    def serve(self, version_dir, servable):
        return self.make_next().server


def spec_with(**serving_rollout):
    doc = copy.deepcopy(example("digits-quality-loop")["spec"])
    doc["serving"]["rollout"] = serving_rollout
    return parse(doc)


class World:
    """The local Service and the versions' stand-in servers, by version."""

    def __init__(self):
        self.service = LocalService().start()
        self.servers: dict[str, LiveServer] = {}

    def make(self, version: str, live: dict) -> LiveServer:
        self.servers[version] = LiveServer(version, live)
        return self.servers[version]

    def close(self):
        self.service.close()
        for s in self.servers.values():
            s.close()
            if s.process.poll() is None:
                s.process.kill()
                s.process.wait()


@pytest.fixture
def world():
    w = World()
    yield w
    w.close()


def loop_for(spec, world, v1_live, v2_live):
    v1 = world.make("v1", v1_live)
    run = FakeRun(spec, lambda: world.make("v2", v2_live))
    clock = iter(NOW + 10 * i for i in range(100))
    return local_loop.QualityLoop(run, world.service, v1.server, clock=lambda: next(clock)), run, v1


def test_too_few_pairs_retrain_nothing(world):
    loop, run, _ = loop_for(spec_with(strategy="Canary"), world, figures("v1", 0.1, 50), figures("v2", 0.99, 500))
    loop.step()
    assert run.trained_with == [] and loop.canary is None and loop.stable.version == "v1"


def test_replace_swaps_versions_at_once_and_stops_the_old_server(world):
    loop, run, v1 = loop_for(spec_with(strategy="Replace"), world, figures("v1", 0.1, 500), figures("v2", 0.99, 0))
    loop.step()
    assert run.trained_with == [int(NOW * 1000)], "trained on the feedback written before the decision"
    assert loop.stable.version == "v2" and loop.canary is None
    assert v1.process.wait(10) is not None, "the old server was stopped"


def test_a_worse_canary_is_aborted_and_the_stable_version_keeps_serving(world, capsys):
    spec = spec_with(strategy="Canary", canary={"replicas": 1, "minPairs": 100, "minDurationSeconds": 0,
                                                "maxMetricDrop": 0.02, "timeoutSeconds": 600})
    loop, run, v1 = loop_for(spec, world, figures("v1", 0.5, 500), figures("v2", 0.3, 500))
    loop.step()
    assert loop.canary is not None and loop.canary.version == "v2"
    canary_process = loop.canary.process
    loop.step()
    assert loop.canary is None and loop.stable.version == "v1" and v1.process.poll() is None
    assert canary_process.wait(10) is not None
    out = capsys.readouterr().out
    assert "canary v2: MetricDropped" in out and "==> canary v2 aborted and rejected; v1 keeps serving" in out


def test_a_canary_without_enough_pairs_waits_and_a_better_one_is_promoted(world, capsys):
    spec = spec_with(strategy="Canary", canary={"replicas": 1, "minPairs": 100, "minDurationSeconds": 0,
                                                "timeoutSeconds": 600})
    loop, run, v1 = loop_for(spec, world, figures("v1", 0.5, 500), figures("v2", 0.95, 20))
    loop.step()
    loop.step()
    assert loop.canary is not None, "20 pairs of the 100 needed: no decision yet"
    world.servers["v2"].figures = figures("v2", 0.95, 300)   # more labeled traffic reached the canary
    loop.step()
    assert loop.canary is None and loop.stable.version == "v2" and v1.process.wait(10) is not None
    assert "==> v2 promoted over v1; serving v2" in capsys.readouterr().out


def test_a_failed_retrain_keeps_the_stable_version_and_respects_the_cooldown(world, capsys):
    loop, run, v1 = loop_for(spec_with(strategy="Canary"), world, figures("v1", 0.1, 500), figures("v2", 0.99, 0))
    run.failure = "v2 failed (BadData): no rows"
    loop.step()
    loop.step()
    assert len(run.trained_with) == 1, "one retrain per cooldown, failed or not"
    assert loop.stable.version == "v1" and v1.process.poll() is None
    assert "the retrain failed; v1 keeps serving: v2 failed (BadData): no rows" in capsys.readouterr().out
