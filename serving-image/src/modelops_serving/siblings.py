"""The other worker processes of one server (`--workers` above 1), and what only all of them together know.

The workers share the HTTP port (SO_REUSEPORT: the kernel gives each new connection to one of them), so a
request lands on any worker, while some answers are the pod's, not one process's: the live figures, the
Prometheus metrics, readiness, and the prediction an id names. Each worker therefore also listens on a
unix socket of its own in the directory the supervisor made (`<dir>/worker-<i>.sock`), and asks its
siblings there, marking the request with SIBLING_HEADER so that a sibling answers for itself alone.
"""
from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from . import peers

SIBLING_HEADER = b"x-modelops-sibling"
_NAME = re.compile(rb"[a-zA-Z_:][a-zA-Z0-9_:]*")


def socket_path(directory: str | Path, index: int) -> str:
    return os.path.join(str(directory), f"worker-{index}.sock")


class Siblings:
    def __init__(self, directory: str | Path, index: int, count: int, timeout_s: float):
        self.index, self.count, self.timeout_s = index, count, timeout_s
        self._paths = {i: socket_path(directory, i) for i in range(count) if i != index}

    async def ask(self, method: str, path: str, body: bytes = b"") -> dict[int, tuple[int, bytes] | None]:
        """Every sibling's (status, body) for one request, None for one that did not answer in time."""
        answers = await asyncio.gather(*(self._one(p, method, path, body) for p in self._paths.values()))
        return dict(zip(self._paths, answers))

    async def answered(self, path: str) -> dict[int, bytes]:
        """The bodies of the siblings that answered GET `path` with a 200 (one restarting is left out)."""
        return {i: answer[1] for i, answer in (await self.ask("GET", path)).items()
                if answer is not None and answer[0] == 200}

    async def first_to_know(self, path: str, body: bytes) -> tuple[int, bytes] | None:
        """The first sibling's answer that is not a 404 (the feedback for an id only one of them remembers)."""
        for sibling in self._paths.values():
            answer = await self._one(sibling, "POST", path, body)
            if answer is not None and answer[0] != 404:
                return answer
        return None

    async def _one(self, socket_file: str, method: str, path: str, body: bytes) -> tuple[int, bytes] | None:
        return await peers.exchange(asyncio.open_unix_connection(socket_file), method, path, body,
                                    host="localhost", mark=SIBLING_HEADER, timeout_s=self.timeout_s)


def merge_expositions(by_worker: dict[int, bytes]) -> bytes:
    """Prometheus text expositions of several workers as one: each sample gains a `worker` label, each family
    keeps one HELP and TYPE line. Counters and histograms then sum across workers in PromQL."""
    families: dict[bytes, tuple[list[bytes], list[bytes]]] = {}
    for worker, text in sorted(by_worker.items()):
        current = None
        for line in text.splitlines():
            if line.startswith(b"# HELP ") or line.startswith(b"# TYPE "):
                current = line.split(b" ", 3)[2]
                head, _ = families.setdefault(current, ([], []))
                if line not in head:
                    head.append(line)
            elif line and not line.startswith(b"#") and current is not None:
                families[current][1].append(_with_worker(line, worker))
    return b"".join(b"\n".join(head + samples) + b"\n" for head, samples in families.values())


def _with_worker(sample: bytes, worker: int) -> bytes:
    name = _NAME.match(sample).group(0)
    label = b'worker="%d"' % worker
    rest = sample[len(name):]
    if rest.startswith(b"{}"):
        return name + b"{" + label + b"}" + rest[2:]
    if rest.startswith(b"{"):
        return name + b"{" + label + b"," + rest[1:]
    return name + b"{" + label + b"}" + rest
