"""Dynamic batching: requests queue up, run together on a pool of worker threads, and each
caller gets back exactly its own rows.

A request is one array per model input, all with the same first (batch) dimension, whatever
their rank; a batch concatenates each input along that dimension and splits each output back.

A batch closes when it holds `max_batch_size` rows, when `max_latency_ms` has passed since
it opened, or when the event loop has delivered no new request for two turns (nobody else is
about to arrive, so waiting longer would only add latency). Batches are formed only when a
worker is free: under load, requests wait in the bounded queue and leave it in full batches.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


class QueueFull(Exception):
    """More requests are waiting than the queue allows; the caller should retry later."""


class ShuttingDown(Exception):
    """The batcher has stopped accepting work."""


Arrays = list[np.ndarray]


@dataclass
class _Pending:
    inputs: Arrays
    rows: int
    future: asyncio.Future = field(repr=False)


class Batcher:
    def __init__(self, predict: Callable[[Arrays], Arrays], *, workers: int, max_batch_size: int,
                 max_latency_ms: float, max_queue: int, on_batch: Callable[[int], None] = lambda rows: None):
        self._predict = predict
        self._workers = workers
        self._max_rows = max_batch_size
        self._max_wait = max_latency_ms / 1000.0
        self._max_queue = max_queue
        self._on_batch = on_batch
        self._queue: collections.deque[_Pending] = collections.deque()
        self._arrived = asyncio.Event()
        self._free = asyncio.Semaphore(workers)
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="model")
        self._accepting = True
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Future] = set()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._dispatch_forever(), name="batcher")

    async def predict(self, inputs: Arrays) -> Arrays:
        if not self._accepting:
            raise ShuttingDown()
        if len(self._queue) >= self._max_queue:
            raise QueueFull()
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(inputs, len(inputs[0]), future))
        self._arrived.set()
        return await future

    async def _dispatch_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._free.acquire()
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            batch = await self._collect(loop)
            running = loop.run_in_executor(self._pool, self._run, batch)
            self._running.add(running)
            running.add_done_callback(lambda f, batch=batch: self._deliver(f, batch))

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        deadline = loop.time() + self._max_wait
        quiet_turns = 0
        while True:
            took = False
            # A request larger than a whole batch runs alone rather than waiting forever.
            while self._queue and (not batch or rows + self._queue[0].rows <= self._max_rows):
                pending = self._queue.popleft()
                batch.append(pending)
                rows += pending.rows
                took = True
            quiet_turns = 0 if took else quiet_turns + 1
            # Still queued here means the next request does not fit: the batch is as full as it gets.
            if self._queue or rows >= self._max_rows or quiet_turns >= 2 or loop.time() >= deadline:
                return batch
            await asyncio.sleep(0)

    def _run(self, batch: list[_Pending]) -> list[Arrays]:
        if len(batch) == 1:
            inputs = batch[0].inputs
        else:
            inputs = [np.concatenate([p.inputs[i] for p in batch]) for i in range(len(batch[0].inputs))]
        self._on_batch(len(inputs[0]))
        outputs = self._predict(inputs)
        if len(batch) == 1:
            return [outputs]
        result, start = [], 0
        for pending in batch:
            end = start + pending.rows
            # A copy, not a view: a caller that keeps its rows (feedback memory) must not pin the whole batch.
            result.append([out[start:end].copy() for out in outputs])
            start = end
        return result

    def _deliver(self, done: asyncio.Future, batch: list[_Pending]) -> None:
        self._running.discard(done)
        self._free.release()
        error = done.exception()
        for i, pending in enumerate(batch):
            if pending.future.done():  # the caller went away (client disconnected)
                continue
            if error is not None:
                pending.future.set_exception(error)
            else:
                pending.future.set_result(done.result()[i])

    async def stop(self, timeout: float) -> None:
        """Refuse new work, finish what is queued and running, then release the threads."""
        self._accepting = False
        deadline = time.monotonic() + timeout
        while (self._queue or self._running) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task:
            self._task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
