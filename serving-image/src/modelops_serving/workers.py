"""The supervisor of `modelops-serve --workers N`: N server processes on one port, so a pod uses its CPUs.

One Python process serves on one core (the GIL), whatever the pod's CPU limit. The supervisor starts N
copies of the server (the same command, each told its index and the directory of their unix sockets);
each binds the port with SO_REUSEPORT, and the kernel spreads new connections over them. It stays PID 1's
job holder: SIGTERM and SIGINT go to every worker (each drains as a single server does) and it exits 0
once all exited cleanly. A worker that dies is started again (the pod reports not ready meanwhile, since a
worker's readiness includes its siblings'); one that keeps dying, MAX_RESTARTS within RESTART_WINDOW_S, takes
the server down, so that the kubelet's restart and back-off take over.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time

log = logging.getLogger("modelops_serving.workers")
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
POLL_S = 0.2
PR_SET_PDEATHSIG = 1


class Supervisor:
    def __init__(self, count: int, argv: list[str]):
        self.count, self.argv = count, argv
        self.sibling_dir = tempfile.mkdtemp(prefix="modelops-workers-")
        self.children: dict[int, subprocess.Popen] = {}
        self.restarts: list[float] = []
        self.stopping = False

    def start(self, index: int) -> None:
        env = {**os.environ, "MODELOPS_WORKERS": str(self.count), "MODELOPS_WORKER_INDEX": str(index),
               "MODELOPS_SIBLING_DIR": self.sibling_dir}
        self.children[index] = subprocess.Popen([sys.executable, "-m", "modelops_serving.server", *self.argv], env=env,
                                                preexec_fn=_die_with_parent)

    def stop(self, signum: int, frame=None) -> None:
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def watch(self) -> int:
        """Until every worker exited after a stop: restart the ones that die meanwhile."""
        while True:
            for index, child in list(self.children.items()):
                if child.poll() is None or self.stopping:
                    continue
                if not self._may_restart():
                    log.error("worker %d exited with %s; %d restarts within %.0f s: stopping the server",
                              index, child.returncode, MAX_RESTARTS, RESTART_WINDOW_S)
                    self.stop(signal.SIGTERM)
                    break
                log.warning("worker %d exited with %s; starting it again", index, child.returncode)
                self.start(index)
            if self.stopping and all(c.poll() is not None for c in self.children.values()):
                clean = all(c.returncode == 0 for c in self.children.values()) and len(self.restarts) <= MAX_RESTARTS
                return 0 if clean else 1
            time.sleep(POLL_S)

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
        return len(self.restarts) <= MAX_RESTARTS


def _die_with_parent() -> None:
    """In the worker before it starts: SIGKILL when the supervisor dies, however it dies (no orphans to serve on)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def supervise(count: int, argv: list[str]) -> int:
    supervisor = Supervisor(count, argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, supervisor.stop)
    log.info("starting %d workers sharing the port", count)
    for index in range(count):
        supervisor.start(index)
    try:
        return supervisor.watch()
    finally:
        for child in supervisor.children.values():
            if child.poll() is None:
                child.kill()
        for name in os.listdir(supervisor.sibling_dir):
            os.unlink(os.path.join(supervisor.sibling_dir, name))
        os.rmdir(supervisor.sibling_dir)
