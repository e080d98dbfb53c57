"""Reconciling again later, for waits no watch event will end: a refused pass, a stuck clean-up.

At most one pending requeue per resource. Every failed pass asks for a retry, and during an
outage every watch event fails a pass: one timer per request would turn N events into N timers
(and N passes, N Warning events) per period. A later request while one is pending is absorbed
unless it asks for an earlier time.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

Key = tuple[str, str]
FIRST_S = 2.0
MAX_S = 300.0


class Timer(Protocol):
    daemon: bool

    def start(self) -> None: ...
    def cancel(self) -> None: ...


def backoff(failures: int) -> float:
    """Exponential: 2 s, 4 s, 8 s … capped at five minutes."""
    return min(MAX_S, FIRST_S * 2 ** (max(failures, 1) - 1))


class Requeues:
    def __init__(self, run: Callable[[str, str], None],
                 timer: Callable[[float, Callable[[], None]], Timer] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._run = run
        self._timer = timer or (lambda delay, fn: threading.Timer(delay, fn))
        self._clock = clock
        self._guard = threading.Lock()
        self._pending: dict[Key, tuple[float, Timer]] = {}
        self._failures: dict[Key, int] = {}

    def after(self, key: Key, delay_s: float) -> None:
        """Run `key` again in `delay_s`, unless a requeue at or before then is already pending."""
        due = self._clock() + delay_s
        with self._guard:
            pending = self._pending.get(key)
            if pending is not None:
                if pending[0] <= due:
                    return
                pending[1].cancel()
            timer = self._timer(delay_s, lambda: self._fire(key, due))
            timer.daemon = True
            self._pending[key] = (due, timer)
        timer.start()

    def failed(self, key: Key) -> int:
        """Count a failed pass and requeue with backoff; returns the failures in a row."""
        with self._guard:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
        self.after(key, backoff(failures))
        return failures

    def succeeded(self, key: Key) -> None:
        with self._guard:
            self._failures.pop(key, None)

    def forget(self, key: Key) -> None:
        """The resource is gone: drop its pending requeue and its failure count."""
        with self._guard:
            pending = self._pending.pop(key, None)
            self._failures.pop(key, None)
        if pending:
            pending[1].cancel()

    def pending(self) -> int:
        with self._guard:
            return len(self._pending)

    def _fire(self, key: Key, due: float) -> None:
        with self._guard:
            if self._pending.get(key, (None,))[0] == due:
                del self._pending[key]
        self._run(*key)
