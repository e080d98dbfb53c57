"""`modelops run`'s Service: connections split by weight, each kept on its backend, weights moving new ones only."""
import socket
import socketserver
import threading
from contextlib import contextmanager

import pytest

from modelops_operator.local_service import LocalService, pick


def test_each_backend_gets_its_share_of_the_draws_and_no_weight_means_no_backend():
    weights = {9001: 2, 9002: 1, 9003: 0}
    draws = [i / 300 for i in range(300)]
    chosen = [pick(weights, d) for d in draws]
    assert (chosen.count(9001), chosen.count(9002), chosen.count(9003)) == (200, 100, 0)
    assert pick(weights, 0.9999999999) == 9002
    assert pick({}, 0.5) is None and pick({9001: 0}, 0.5) is None


@contextmanager
def named_backend(name: bytes):
    """A TCP server answering every line with its name and the line: which backend a connection reached."""
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write(name + b":" + line)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def service():
    s = LocalService().start()
    yield s
    s.close()


def ask(conn: socket.socket, text: bytes) -> bytes:
    conn.sendall(text + b"\n")
    return conn.makefile("rb").readline().strip()


def test_a_connection_stays_on_its_backend_while_new_ones_follow_the_new_weights(service):
    with named_backend(b"stable") as stable, named_backend(b"canary") as canary:
        service.route({stable: 1})
        with socket.create_connection(("127.0.0.1", service.port), timeout=5) as kept:
            assert ask(kept, b"a") == b"stable:a"
            service.route({canary: 1})
            assert ask(kept, b"b") == b"stable:b", "an open connection finishes where it is"
            with socket.create_connection(("127.0.0.1", service.port), timeout=5) as new:
                assert ask(new, b"c") == b"canary:c"

        service.route({stable: 1, canary: 1})
        reached = set()
        for i in range(40):
            with socket.create_connection(("127.0.0.1", service.port), timeout=5) as conn:
                reached.add(ask(conn, b"x").split(b":")[0])
        assert reached == {b"stable", b"canary"}   # 40 fair draws all alike: 2 in 2^40


def test_without_a_backend_the_connection_is_closed(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as conn:
        conn.sendall(b"anyone?\n")
        assert conn.recv(10) == b""
