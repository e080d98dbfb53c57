"""SIGTERM while clients keep opening connections: every request that was sent is answered.

A refused (or timed-out) connect is fine, nothing was sent; a connection that the kernel completed and
the client then sent its request on, only to be reset, is a lost request.
"""
import json
import signal
import socket
import threading
import time

import pytest

from serving_fixtures import digits, digits_dir, poll, running_server  # noqa: F401

pytestmark = pytest.mark.component
CLIENTS = 16
RUNS = 3


def one_request(port: int, body: bytes) -> str:
    """'ok', 'not sent' (connect refused or timed out) or 'lost' (sent, then reset or no answer)."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    except OSError:
        return "not sent"
    with sock:
        try:
            sock.sendall(b"POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            sock.settimeout(30)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError:
            return "lost"
    return "ok" if reply.startswith(b"HTTP/1.1 200") else "lost"


def hammer(port: int, body: bytes, outcomes: list, stop: threading.Event) -> None:
    while not stop.is_set():
        outcomes.append(one_request(port, body))


# Worker processes share the port (SO_REUSEPORT): each listener drains its own accept queue.
@pytest.mark.parametrize("workers, run", [*((1, r) for r in range(RUNS)), *((2, r) for r in range(2))])
def test_sigterm_with_clients_still_connecting_loses_no_sent_request(digits_dir, tmp_path, workers, run):
    x, _ = digits()
    body = json.dumps({"instances": x[:1].tolist()}).encode()
    outcomes: list[str] = []
    stop = threading.Event()
    with running_server(digits_dir, "digits", tmp_path, drain_seconds=0, max_latency_ms=2,
                        workers=workers) as server:
        server.wait_ready()
        port = int(server.url.rpartition(":")[2])
        threads = [threading.Thread(target=hammer, args=(port, body, outcomes, stop)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        poll(lambda: outcomes.count("ok") > 300, timeout=30, what="load")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
        time.sleep(0.5)      # clients keep connecting after the server is gone: refused, not lost
        stop.set()
        for t in threads:
            t.join(60)
    assert outcomes.count("lost") == 0, f"{outcomes.count('lost')} lost of {len(outcomes)}"
    assert outcomes.count("not sent") >= 1    # the clients really did keep connecting through the shutdown
