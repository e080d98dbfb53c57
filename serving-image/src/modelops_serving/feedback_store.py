"""Joined feedback kept on storage: a bounded buffer written out as segment files.

Records wait in memory until `segment_records` of them are buffered or `flush_s` has passed, then
go out as one segment (contracts.feedback: written to a temporary name and renamed, so a killed
replica leaves whole segments or none, and loses at most its unwritten buffer). Shutdown writes
what is left. Memory is bounded by `buffer_records` (while storage is slow or failing the oldest
unwritten records are dropped first), disk by `max_bytes` over the whole feedback directory that
every replica of the model shares (the oldest segments, whoever wrote them, are deleted first).
Both kinds of loss are counted.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from modelops_contracts import feedback as contract

log = logging.getLogger(__name__)
# A temporary left by a replica killed mid-write is garbage once nobody could still be renaming it.
STALE_TEMPORARY_S = 600.0


@dataclass
class StoreCounts:
    """What the store did, for /metrics."""
    written_records: int = 0
    written_segments: int = 0
    dropped_records: int = 0        # never written: the memory cap
    dropped_segments: int = 0       # written, then deleted: the disk cap
    write_errors: int = 0


class FeedbackStore:
    def __init__(self, directory: str | Path, replica: str, *, segment_records: int, flush_s: float,
                 buffer_records: int, max_bytes: int, clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        self.replica = replica
        self._segment_records, self._flush_s = segment_records, flush_s
        self._max_bytes, self._clock = max_bytes, clock
        self._buffer: collections.deque[contract.FeedbackRecord] = collections.deque(maxlen=buffer_records)
        self._sequence = 0
        self.counts = StoreCounts()
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def add(self, record: contract.FeedbackRecord) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.counts.dropped_records += 1      # the deque drops the oldest on append
        self._buffer.append(record)
        if len(self._buffer) >= self._segment_records:
            self._full.set()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._full.wait(), self._flush_s)
            except asyncio.TimeoutError:
                pass
            self._full.clear()
            await self.flush()

    async def close(self) -> None:
        """Stop the timer and write everything still buffered. Not by cancelling: a write cut short
        on the event loop still completes in its thread."""
        self._closing = True
        self._full.set()
        if self._task:
            await self._task
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            while self._buffer:
                # Taken out before writing: a flush cancelled mid-write must not write the batch twice.
                batch = [self._buffer.popleft() for _ in range(min(self._segment_records, len(self._buffer)))]
                if not await asyncio.to_thread(self._write, batch):
                    self._put_back(batch)
                    return              # for the next flush
            await asyncio.to_thread(self._enforce_disk_cap)

    def _put_back(self, batch: list[contract.FeedbackRecord]) -> None:
        """Return an unwritten batch to the front, keeping the newest records within the memory cap."""
        waiting = batch + list(self._buffer)
        keep = waiting[-self._buffer.maxlen:]
        self.counts.dropped_records += len(waiting) - len(keep)
        self._buffer.clear()
        self._buffer.extend(keep)

    def _write(self, batch: list[contract.FeedbackRecord]) -> bool:
        """True when the batch is done with: written, or (a record JSON cannot hold) dropped and counted."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)     # again: a clean-up may have removed it
            contract.write_segment(self.directory, self.replica, self._sequence, int(self._clock() * 1000), batch)
        except ValueError:
            # A non-finite input (binary tensors can carry NaN) cannot go into a segment; the rest can.
            fine = [r for r in batch if _serializable(r)]
            if len(fine) == len(batch):
                fine = []               # no record is at fault, yet the segment is refused: drop, do not loop
            self.counts.dropped_records += len(batch) - len(fine)
            log.warning("feedback: dropped %d records that JSON cannot hold (non-finite numbers)",
                        len(batch) - len(fine))
            return not fine or self._write(fine)
        except OSError as e:
            self.counts.write_errors += 1
            log.warning("feedback: could not write a segment of %d records to %s: %s", len(batch), self.directory, e)
            return False
        self._sequence += 1
        self.counts.written_records += len(batch)
        self.counts.written_segments += 1
        return True

    def _enforce_disk_cap(self) -> None:
        sizes = []
        for path in contract.list_segments(self.directory):
            try:
                sizes.append((path, path.stat().st_size))
            except FileNotFoundError:
                continue                # another replica pruned it meanwhile
        total = sum(size for _, size in sizes)
        for path, size in sizes:        # oldest first
            if total <= self._max_bytes:
                break
            try:
                path.unlink()
                self.counts.dropped_segments += 1
            except FileNotFoundError:
                pass                    # another replica got there first: not ours to count
            total -= size
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        cutoff = self._clock() - STALE_TEMPORARY_S
        for entry in os.scandir(self.directory):
            if entry.name.startswith(".seg-"):
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    pass


def _serializable(record: contract.FeedbackRecord) -> bool:
    try:
        json.dumps(record.to_dict(), allow_nan=False)
    except ValueError:
        return False
    return True
