"""A Service on 127.0.0.1 for `modelops run`: one address in front of the versions' servers.

As kube-proxy does for a Service without a mesh, each new connection goes to one backend, picked at
random in proportion to its weight (a Deployment's replica count), and stays there: a request and
the feedback sent on the same connection reach the same server. Changing the weights moves new
connections only; a connection already open finishes where it is, so a promotion fails no request.
"""
from __future__ import annotations

import random
import selectors
import socket
import socketserver
import threading
from typing import Mapping

CONNECT_TIMEOUT_S = 5
CHUNK = 65536


def pick(weights: Mapping[int, int], draw: float) -> int | None:
    """The backend port for one connection: `draw` in [0, 1) falls in a port's share of the total weight."""
    total = sum(w for w in weights.values() if w > 0)
    if total == 0:
        return None
    point = draw * total
    for port, weight in sorted(weights.items()):
        if weight <= 0:
            continue
        if point < weight:
            return port
        point -= weight
    return max(p for p, w in weights.items() if w > 0)   # draw * total rounding up to total


class LocalService:
    def __init__(self) -> None:
        self._weights: dict[int, int] = {}
        self._lock = threading.Lock()
        self._random = random.Random()
        service = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                service._relay(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=True)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-service", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalService":
        self._thread.start()
        return self

    def route(self, weights: Mapping[int, int]) -> None:
        """Send new connections to these backend ports, in proportion to their weights."""
        with self._lock:
            self._weights = dict(weights)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _relay(self, client: socket.socket) -> None:
        with self._lock:
            port = pick(self._weights, self._random.random())
        if port is None:
            return   # no backend: the client sees the connection closed, as with a Service without endpoints
        try:
            backend = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
        except OSError:
            return
        with backend:
            backend.settimeout(None)
            _pipe(client, backend)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes."""
    with selectors.DefaultSelector() as sel:
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        while True:
            for key, _ in sel.select():
                try:
                    data = key.fileobj.recv(CHUNK)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return
