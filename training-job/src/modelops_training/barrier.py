"""The start-up barrier of multi-worker training: every worker must be up before TensorFlow waits for them.

MultiWorkerMirroredStrategy blocks, without a timeout, until every task of TF_CONFIG has connected.
A worker whose pod never schedules (no capacity, an image that cannot be pulled) would leave the others
waiting until the Job's deadline, saying nothing. Here each worker listens on its own address and waits
until it can connect to every peer (their barrier listener, or already their TensorFlow server), for at
most `timeout_s`, then fails naming the peers that never came. Free of TensorFlow.
"""
from __future__ import annotations

import logging
import socket
import time
from typing import Any, Callable, Mapping

from .errors import BadConfig, WorkersNotStarted

log = logging.getLogger("modelops.barrier")
STARTUP_TIMEOUT_ENV = "MODELOPS_STARTUP_TIMEOUT_S"
DEFAULT_STARTUP_TIMEOUT_S = 600.0
PROBE_TIMEOUT_S = 1.0
PROBE_INTERVAL_S = 0.5


def startup_timeout(env: Mapping[str, str]) -> float:
    raw = env.get(STARTUP_TIMEOUT_ENV, str(DEFAULT_STARTUP_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        raise BadConfig(f"{STARTUP_TIMEOUT_ENV}: expected a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise BadConfig(f"{STARTUP_TIMEOUT_ENV}: must be positive, got {raw!r}")
    return value


def addresses(tf_config: Mapping[str, Any]) -> tuple[str, list[str]]:
    """This task's address and its peers', from TF_CONFIG."""
    cluster, task = tf_config.get("cluster", {}), tf_config.get("task", {})
    own = cluster[task["type"]][task["index"]]
    return own, [a for kind in sorted(cluster) for a in cluster[kind] if a != own]


def reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:   # not resolvable yet (no pod, no DNS record), refused, or unreachable
        return False


def _listen(port: int) -> socket.socket:
    if socket.has_dualstack_ipv6():
        return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=64)
    return socket.create_server(("", port), backlog=64)


def wait_for_peers(tf_config: Mapping[str, Any], timeout_s: float,
                   clock: Callable[[], float] = time.monotonic) -> None:
    own, peers = addresses(tf_config)
    port = int(own.rpartition(":")[2])
    # Listen on our port (every interface, as TensorFlow's server will) so that peers find us; closed
    # before TensorFlow binds it. A peer that reached us before then still finds its TensorFlow server.
    with _listen(port):
        deadline = clock() + timeout_s
        waiting = list(peers)
        while waiting:
            waiting = [p for p in waiting if not reachable(p)]
            if not waiting:
                break
            if clock() >= deadline:
                raise WorkersNotStarted(
                    f"training: {len(waiting)} of {len(peers)} other workers never started within {timeout_s:.0f}s "
                    f"({', '.join(waiting)}): unschedulable, or their image could not be pulled; see their pods' "
                    f"events (training.startupTimeoutSeconds sets the wait)")
            time.sleep(PROBE_INTERVAL_S)
    log.info("all %d workers are up", len(peers) + 1)
