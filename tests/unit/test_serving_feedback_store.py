"""The feedback store: segments by count and by time, bounded memory and disk, losses counted."""
import asyncio
import os
import time

from modelops_contracts import feedback as contract
from modelops_serving.feedback_store import STALE_TEMPORARY_S, FeedbackStore


def record(i: int, value: float = 1.0) -> contract.FeedbackRecord:
    return contract.FeedbackRecord(prediction_id=f"p-{i}", version="v1", inputs={"features": [[value, 2.0]]},
                                   prediction=[[0.5]], truth=[1.0], time=1000.0 + i)


def store(tmp_path, **overrides) -> FeedbackStore:
    settings = dict(segment_records=3, flush_s=3600.0, buffer_records=100, max_bytes=1 << 30)
    settings.update(overrides)
    return FeedbackStore(tmp_path, "replica-a", **settings)


def written(tmp_path) -> list[str]:
    return [r.prediction_id for _, records in contract.read_segments(tmp_path) for r in records]


def test_a_full_segment_is_written_at_once_and_the_rest_on_close(tmp_path):
    async def run():
        s = store(tmp_path)
        s.start()
        for i in range(7):
            s.add(record(i))
        for _ in range(100):
            if len(written(tmp_path)) >= 6:
                break
            await asyncio.sleep(0.01)
        seen = written(tmp_path)
        await s.close()
        return seen, s
    before_close, s = asyncio.run(run())
    assert before_close[:6] == [f"p-{i}" for i in range(6)]
    assert written(tmp_path) == [f"p-{i}" for i in range(7)]
    assert (s.counts.written_records, s.buffered, s.counts.dropped_records) == (7, 0, 0)


def test_a_partial_segment_is_written_after_flush_s(tmp_path):
    async def run():
        s = store(tmp_path, segment_records=1000, flush_s=0.05)
        s.start()
        s.add(record(0))
        s.add(record(1))
        for _ in range(100):
            if written(tmp_path):
                break
            await asyncio.sleep(0.01)
        result = written(tmp_path)
        await s.close()
        return result
    assert asyncio.run(run()) == ["p-0", "p-1"]


def test_memory_is_bounded_while_storage_fails_and_the_oldest_records_are_dropped_and_counted(tmp_path):
    target = tmp_path / "gone"
    target.write_text("a file where the directory should be: every write fails, even as root")

    async def run():
        s = store(target, buffer_records=5)
        for i in range(12):
            s.add(record(i))
        await s.flush()
        return s
    s = asyncio.run(run())
    assert s.buffered == 5 and s.counts.dropped_records == 7 and s.counts.write_errors == 1
    target.unlink()
    target.mkdir()                        # storage is back: what was kept is written
    asyncio.run(s.flush())
    assert written(target) == [f"p-{i}" for i in range(7, 12)] and s.counts.written_records == 5


def test_disk_is_bounded_over_the_whole_directory_oldest_segment_first(tmp_path):
    clock = [1000.0]
    other = contract.write_segment(tmp_path, "replica-b", 0, 999_000, [record(100)])   # another replica's, older
    s = FeedbackStore(tmp_path, "replica-a", segment_records=1, flush_s=3600.0, buffer_records=100,
                      max_bytes=3 * other.stat().st_size + 10, clock=lambda: clock[0])

    async def run():
        for i in range(5):
            clock[0] += 1
            s.add(record(i))
            await s.flush()
    asyncio.run(run())
    assert written(tmp_path) == ["p-2", "p-3", "p-4"]
    assert not other.exists() and s.counts.dropped_segments == 3 and s.counts.written_segments == 5


def test_a_record_json_cannot_hold_is_dropped_and_counted_not_retried_forever(tmp_path):
    async def run():
        s = store(tmp_path)
        s.add(record(0))
        s.add(record(1, value=float("nan")))
        s.add(record(2))
        await s.flush()
        return s
    s = asyncio.run(run())
    assert written(tmp_path) == ["p-0", "p-2"] and s.counts.dropped_records == 1 and s.buffered == 0


def test_a_stale_temporary_of_a_killed_writer_is_removed_a_fresh_one_kept(tmp_path):
    stale = tmp_path / ".seg-0000000000000001-x-000000.jsonl.abc"
    fresh = tmp_path / ".seg-0000000000000002-x-000000.jsonl.def"
    for p in (stale, fresh):
        p.write_text("half a segment")
    old = time.time() - STALE_TEMPORARY_S - 5
    os.utime(stale, (old, old))

    async def run():
        s = store(tmp_path)
        s.add(record(0))
        await s.flush()
    asyncio.run(run())
    assert not stale.exists() and fresh.exists() and written(tmp_path) == ["p-0"]
