"""`modelops-serve --workers 2`: two processes share the port, and the server still answers as one: feedback
by id joins whichever worker made the prediction, /v1/live and /metrics add up every worker, readiness
waits for all, a killed worker comes back, and SIGTERM drains them all."""
import os
import signal
import subprocess

import pytest
import tritonclient.grpc as grpcclient
from prometheus_client.parser import text_string_to_metric_families

from serving_fixtures import digits, digits_dir, free_port, poll, running_server  # noqa: F401

pytestmark = pytest.mark.component
PREDICT = "/v1/models/digits:predict"


def workers_of(server) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True).stdout
    return sorted(int(pid) for pid in out.split())


def samples(server, name: str) -> list:
    return [s for family in text_string_to_metric_families(server.get("/metrics").text)
            for s in family.samples if s.name == name]


def predictions_total(server) -> dict[str, float]:
    """Predict requests answered by each worker, from the merged /metrics."""
    return {s.labels["worker"]: s.value for s in samples(server, "modelops_requests_total")
            if s.labels["route"] == "/v1/models/{name}:predict"}


def test_two_workers_share_the_port_and_answer_as_one_server(digits_dir, tmp_path):
    x, y = digits()
    feedback = tmp_path / "feedback"
    with running_server(digits_dir, "digits", tmp_path, workers=2, replica="pod-a", feedback_dir=feedback,
                        feedback_flush_s=3600) as server:
        server.wait_ready()
        assert len(workers_of(server)) == 2
        ids = []
        for i in range(0, 600, 10):          # a connection each: the kernel spreads them over the workers
            answer = server.post(PREDICT, json={"instances": x[i:i + 10].tolist()})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["id"])
        by_worker = predictions_total(server)
        assert set(by_worker) == {"0", "1"} and sum(by_worker.values()) == 60, by_worker

        # Feedback lands on either worker; the one that made the prediction joins it.
        for n, pid in enumerate(ids):
            answer = server.post("/v1/models/digits:feedback", json={"id": pid, "truth": y[n * 10:n * 10 + 10].tolist()})
            assert answer.status_code == 200, answer.text
        assert server.post("/v1/models/digits:feedback", json={"id": "nobody-1", "truth": [1]}).status_code == 404

        live = server.get("/v1/live").json()
        assert (live["replica"], live["requests"], live["pairs"]) == ("pod-a", 60, 600), live
        assert sum(s.value for s in samples(server, "modelops_feedback_pairs")) == 600

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
    # Each worker flushed its own segment file on the way out: every joined row is on storage.
    segments = sorted(p.name for p in feedback.glob("seg-*.jsonl"))
    assert len(segments) == 2, segments
    assert any("pod-a-w0" in s for s in segments) and any("pod-a-w1" in s for s in segments), segments


def test_a_killed_worker_is_started_again_and_the_pod_is_not_ready_meanwhile(digits_dir, tmp_path):
    x, _ = digits()
    with running_server(digits_dir, "digits", tmp_path, workers=2) as server:
        server.wait_ready()
        first, second = workers_of(server)
        os.kill(second, signal.SIGKILL)
        poll(lambda: server.status("/v2/health/ready") == 503, timeout=10, what="readiness to drop")
        poll(lambda: len(workers_of(server)) == 2 and second not in workers_of(server), timeout=30,
             what="the worker to be started again")
        server.wait_ready()
        for i in range(20):
            assert server.post(PREDICT, json={"instances": x[i:i + 1].tolist()}).status_code == 200
        assert first in workers_of(server), "the other worker was left alone"


def test_both_workers_serve_grpc_on_the_shared_port(digits_dir, tmp_path):
    x, _ = digits()
    port = free_port()
    with running_server(digits_dir, "digits", tmp_path, workers=2, grpc_port=port) as server:
        server.wait_ready()
        for i in range(30):                  # a client (a connection) each
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
            tensor = grpcclient.InferInput("features", [1, 64], "FP32")
            tensor.set_data_from_numpy(x[i:i + 1].astype("float32"))
            assert client.infer("digits", [tensor]).as_numpy("output").shape == (1, 10)
            client.close()
        by_worker = {s.labels["worker"]: s.value for s in samples(server, "modelops_requests_total")
                     if s.labels["route"] == "grpc:ModelInfer"}
        assert set(by_worker) == {"0", "1"} and sum(by_worker.values()) == 30, by_worker


def test_workers_do_not_outlive_a_killed_supervisor(digits_dir, tmp_path):
    with running_server(digits_dir, "digits", tmp_path, workers=2) as server:
        server.wait_ready()
        children = workers_of(server)
        server.process.kill()
        server.process.wait(10)
        poll(lambda: not any(running(pid) for pid in children), timeout=10,
             what="the workers to die with their supervisor")


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
