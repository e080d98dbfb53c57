"""The server's lifecycle: checksum refusal, the TensorFlow fallback, load shedding, SIGTERM under load."""
import asyncio
import json
import shutil
import signal
import threading
import time

import httpx
import numpy as np
import pytest

from serving_fixtures import digits, digits_dir, poll, reference_outputs, running_server  # noqa: F401

pytestmark = pytest.mark.component


def copy_version(source, dest, *, drop=()):
    """A copy of a version directory, without the servables named in `drop`."""
    shutil.copytree(source, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    for kind in drop:
        path = manifest["servables"].pop(kind)
        manifest["files"] = {f: e for f, e in manifest["files"].items() if f != path and not f.startswith(path + "/")}
        shutil.rmtree(dest / path) if (dest / path).is_dir() else (dest / path).unlink()
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


@pytest.mark.parametrize("damage, reason", [
    (lambda d: (d / "model.tflite").write_bytes((d / "model.tflite").read_bytes()[:-1] + b"\x00"),
     "model.tflite: sha256 differs from the manifest"),
    (lambda d: (d / "model.tflite").unlink(), "model.tflite: listed in the manifest but missing"),
    (lambda d: (d / "manifest.json").write_text("{"), "not JSON"),
], ids=["tampered", "missing", "bad-manifest"])
def test_a_version_that_fails_verification_is_refused_and_the_reason_shown(digits_dir, tmp_path, damage, reason):
    version = copy_version(digits_dir, tmp_path / "v1")
    damage(version)
    with running_server(version, "digits", tmp_path) as server:
        poll(lambda: reason in server.log_text(), timeout=30, what="the refusal in the log")
        assert server.get("/v2/health/live").status_code == 200
        ready = server.get("/v2/health/ready")
        assert ready.status_code == 503 and reason in ready.json()["reason"]
        assert server.get("/v2/models/digits/ready").status_code == 503
        refused = server.post("/v1/models/digits:predict", json={"instances": [[0.0] * 64]})
        assert refused.status_code == 503 and reason in refused.json()["error"]
        status = server.get("/v1/models/digits").json()["model_version_status"][0]
        assert status["state"] == "LOADING" and reason in status["status"]["error_message"]


@pytest.mark.parametrize("drop, platform", [(("tflite", "tfliteFloat32"), "tensorflow_savedmodel"),
                                             (("tflite", "tfliteFloat32", "savedModel"), "tensorflow_keras")])
def test_without_a_tflite_file_tensorflow_serves_the_model(digits_dir, tmp_path, drop, platform):
    import tensorflow as tf

    version = copy_version(digits_dir, tmp_path / "v1", drop=drop)
    x, _ = digits()
    signature = tf.saved_model.load(str(digits_dir / "saved_model")).signatures["serving_default"]
    expected = signature(features=tf.constant(x[:3]))["output"].numpy()
    with running_server(version, "digits", tmp_path) as server:
        server.wait_ready(timeout=120)
        assert server.get("/v2/models/digits").json()["platform"] == platform
        reply = server.post("/v1/models/digits:predict", json={"instances": x[:3].tolist()})
        np.testing.assert_allclose(reply.json()["predictions"], expected, rtol=1e-5, atol=1e-6)


def test_the_uncompressed_fallback_is_served_by_litert_not_tensorflow(digits_dir, tmp_path):
    """What ServeUncompressed picks: the float32 TFLite model, which the TensorFlow-free image can load."""
    import tensorflow as tf

    x, _ = digits()
    signature = tf.saved_model.load(str(digits_dir / "saved_model")).signatures["serving_default"]
    expected = signature(features=tf.constant(x[:3]))["output"].numpy()
    version = copy_version(digits_dir, tmp_path / "v1", drop=("savedModel", "keras"))
    with running_server(version, "digits", tmp_path, servable="tfliteFloat32") as server:
        server.wait_ready(timeout=120)
        assert server.get("/v2/models/digits").json()["platform"] == "tflite"
        reply = server.post("/v1/models/digits:predict", json={"instances": x[:3].tolist()})
        np.testing.assert_allclose(reply.json()["predictions"], expected, rtol=1e-4, atol=1e-5)


def test_the_operator_can_ask_for_the_uncompressed_model_beside_a_tflite_one(digits_dir, tmp_path):
    with running_server(digits_dir, "digits", tmp_path, servable="savedModel") as server:
        server.wait_ready(timeout=120)
        assert server.get("/v2/models/digits").json()["platform"] == "tensorflow_savedmodel"


def test_a_servable_the_version_lacks_leaves_the_server_not_ready_saying_so(digits_dir, tmp_path):
    version = copy_version(digits_dir, tmp_path / "v1", drop=("tflite",))
    with running_server(version, "digits", tmp_path, servable="tflite") as server:
        poll(lambda: server.status("/v2/health/ready") == 503 and "no tflite servable" in server.log_text(),
             timeout=60, what="the refusal")
        assert "no tflite servable" in server.get("/v2/health/ready").json()["reason"]


def test_a_full_queue_sheds_load_with_503_and_retry_after(digits_dir, tmp_path):
    x, _ = digits()
    big = np.resize(x, (1024, 64))
    body = json.dumps({"instances": big.tolist()})
    expected = reference_outputs(digits_dir, big[:2])
    with running_server(digits_dir, "digits", tmp_path, max_queue=2, max_batch_size=1, interpreters=1) as server:
        server.wait_ready()

        async def flood():
            async with httpx.AsyncClient(base_url=server.url, timeout=60,
                                         limits=httpx.Limits(max_connections=48)) as client:
                return await asyncio.gather(*(client.post("/v1/models/digits:predict", content=body)
                                              for _ in range(48)))

        replies = asyncio.run(flood())
        codes = [r.status_code for r in replies]
        assert set(codes) == {200, 503}, codes
        for reply in replies:
            if reply.status_code == 503:
                assert reply.headers["retry-after"] == "1" and "overloaded" in reply.json()["error"]
            else:
                np.testing.assert_allclose(reply.json()["predictions"][:2], expected, rtol=1e-5, atol=1e-6)
        assert server.post("/v1/models/digits:predict", json={"instances": x[:1].tolist()}).status_code == 200


def test_sigterm_under_load_turns_unready_at_once_and_loses_no_accepted_request(digits_dir, tmp_path):
    x, _ = digits()
    expected = reference_outputs(digits_dir, x[:16])
    outcomes: list[tuple[str, object]] = []
    lb_routes = threading.Event()   # the Service still sends traffic to this pod
    lb_routes.set()

    def client(i: int):
        with httpx.Client(timeout=30) as http:
            while lb_routes.is_set():
                try:
                    reply = http.post(url, json={"instances": x[i:i + 1].tolist()})
                except httpx.TransportError as e:
                    outcomes.append(("lost", repr(e)))
                    return
                ok = reply.status_code == 200 and np.allclose(reply.json()["predictions"], expected[i:i + 1], atol=1e-6)
                outcomes.append(("ok" if ok else "wrong", (reply.status_code, time.monotonic())))

    with running_server(digits_dir, "digits", tmp_path, drain_seconds=1.5, max_latency_ms=20) as server:
        server.wait_ready()
        url = server.url + "/v1/models/digits:predict"
        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        poll(lambda: len(outcomes) > 200, timeout=30, what="load")
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        poll(lambda: server.status("/v2/health/ready") == 503, timeout=0.5, interval=0.01, what="readiness false")
        time.sleep(0.5)   # the endpoint controller removes the pod; until then traffic keeps coming
        lb_routes.clear()
        for t in threads:
            t.join(30)
        assert server.process.wait(30) == 0
    assert outcomes and all(kind == "ok" for kind, _ in outcomes), [o for o in outcomes if o[0] != "ok"][:5]
    served_after_sigterm = [when for _, (code, when) in outcomes if when > signalled]
    assert len(served_after_sigterm) >= 16
    assert "draining" in server.log_text()


def test_sigterm_finishes_every_queued_request_before_exiting(digits_dir, tmp_path):
    x, _ = digits()
    body = json.dumps({"instances": np.resize(x, (1024, 64)).tolist()})
    answers: list[object] = []

    def client():
        try:
            answers.append(httpx.post(url, content=body, timeout=60).status_code)
        except httpx.TransportError as e:   # connected after the listener closed: never accepted
            answers.append(type(e).__name__)

    with running_server(digits_dir, "digits", tmp_path, max_batch_size=1, interpreters=1) as server:
        server.wait_ready()
        url = server.url + "/v1/models/digits:predict"
        threads = [threading.Thread(target=client) for _ in range(24)]
        for t in threads:
            t.start()
        depth = poll(lambda: (d := server.metric("modelops_queue_depth")) >= 3 and d,
                     timeout=30, interval=0.005, what="a queue")
        server.process.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        assert server.process.wait(30) == 0
    assert answers.count(200) >= depth
    assert all(a == 200 or isinstance(a, str) for a in answers), answers
