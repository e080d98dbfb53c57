"""`modelops-serve`: parse settings, build the model and the app, run uvicorn until SIGTERM."""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from typing import Sequence

import prometheus_client
import uvicorn

from . import listener, siblings, workers
from .app import ServingApp, create_app
from .model import ServedModel
from .settings import ServerSettings, parse_settings

log = logging.getLogger("modelops_serving")


class DrainingServer(uvicorn.Server):
    """uvicorn's graceful shutdown, preceded by an optional drain.

    On SIGTERM/SIGINT readiness goes false at once; the server keeps serving for
    `drain_seconds` (while the Service stops routing to this pod), then stops accepting,
    finishes every accepted request, and exits.
    """

    def __init__(self, config: uvicorn.Config, app: ServingApp, drain_seconds: float):
        super().__init__(config)
        self._app = app
        self._drain_seconds = drain_seconds
        self._exit_at: float | None = None

    def handle_exit(self, sig: int, frame) -> None:
        # Not uvicorn's handler: that one re-raises the signal after shutdown, so a clean drain
        # would end as "killed by SIGTERM"; here a graceful shutdown exits 0.
        self._app.begin_drain()
        if self._exit_at is None and self._drain_seconds > 0:
            self._exit_at = time.monotonic() + self._drain_seconds
            return
        if self.should_exit:
            self.force_exit = True      # signalled again while shutting down: stop waiting
        self.should_exit = True

    async def shutdown(self, sockets=None) -> None:
        # uvicorn closes the listener first, resetting connections still in its accept queue: drain them.
        await listener.quiesce(sock for server in self.servers for sock in server.sockets
                               if sock.family in (socket.AF_INET, socket.AF_INET6))
        await super().shutdown(sockets)

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            return True
        return await super().on_tick(counter)


def build_server(settings: ServerSettings) -> DrainingServer:
    app = create_app(ServedModel(settings.model_dir, settings.model_name, settings.servable), settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                            lifespan="on", access_log=False, log_level=settings.log_level,
                            limit_concurrency=settings.max_connections,
                            timeout_graceful_shutdown=settings.graceful_timeout_s, log_config=None)
    return DrainingServer(config, app, settings.drain_seconds)


def worker_sockets(settings: ServerSettings) -> list[socket.socket]:
    """A worker's listeners: the shared port (SO_REUSEPORT: the kernel spreads new connections over the
    workers) and its own unix socket, where its siblings reach it (siblings.py)."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    shared = socket.socket(family, socket.SOCK_STREAM)
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    shared.bind((settings.host, settings.port))
    own = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = siblings.socket_path(settings.sibling_dir, settings.worker_index)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)                 # a crashed predecessor's
    own.bind(path)
    return [shared, own]


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.supervises:
        return workers.supervise(settings.worker_count, sys.argv[1:] if argv is None else list(argv))
    prometheus_client.disable_created_metrics()   # the *_created series only add scrape weight
    who = f"worker {settings.worker_index} serving" if settings.sibling_dir else "serving"
    log.info("%s %s from %s on %s:%d", who, settings.model_name, settings.model_dir, settings.host, settings.port)
    build_server(settings).run(sockets=worker_sockets(settings) if settings.sibling_dir else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
