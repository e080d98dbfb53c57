"""Dynamic batching: concurrent callers share model calls and each gets exactly its own rows."""
import asyncio
import threading

import numpy as np
import pytest

from modelops_serving.batching import Batcher, QueueFull, ShuttingDown


class RecordingModel:
    """A model whose answer identifies the row (row sum and row count) and which records batch sizes."""

    def __init__(self, delay: threading.Event | None = None):
        self.batches: list[int] = []
        self.release = delay

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self.release is not None:
            self.release.wait(5)
        rows = inputs[0]
        self.batches.append(len(rows))
        return [np.stack([rows.sum(axis=1), np.full(len(rows), len(rows))], axis=1)]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_many_concurrent_callers_get_their_own_rows_in_shared_batches():
    model = RecordingModel()

    async def scenario():
        batcher = Batcher(model, workers=2, max_batch_size=16, max_latency_ms=50, max_queue=1000)
        batcher.start()
        requests = [np.full((1 + i % 3, 4), float(i), dtype=np.float32) for i in range(200)]
        answers = [a[0] for a in await asyncio.gather(*(batcher.predict([r]) for r in requests))]
        await batcher.stop(5)
        return requests, answers

    requests, answers = run(scenario())
    for rows, answer in zip(requests, answers):
        assert answer[:, 0].tolist() == rows.sum(axis=1).tolist()
    assert sum(model.batches) == sum(len(r) for r in requests)
    assert max(model.batches) <= 16 and len(model.batches) < len(requests)


def test_a_request_larger_than_a_batch_runs_alone():
    model = RecordingModel()

    async def scenario():
        batcher = Batcher(model, workers=1, max_batch_size=4, max_latency_ms=1, max_queue=10)
        batcher.start()
        answer = await batcher.predict([np.ones((10, 2), dtype=np.float32)])
        await batcher.stop(5)
        return answer

    assert run(scenario())[0][:, 0].tolist() == [2.0] * 10
    assert model.batches == [10]


def test_a_full_queue_sheds_load_instead_of_growing():
    release = threading.Event()
    model = RecordingModel(delay=release)

    async def scenario():
        batcher = Batcher(model, workers=1, max_batch_size=1, max_latency_ms=0, max_queue=3)
        batcher.start()
        first = asyncio.ensure_future(batcher.predict([np.ones((1, 2), dtype=np.float32)]))
        await asyncio.sleep(0.05)               # the first one is running, the worker is busy
        queued = [asyncio.ensure_future(batcher.predict([np.ones((1, 2), dtype=np.float32)])) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.predict([np.ones((1, 2), dtype=np.float32)])
        release.set()
        done = await asyncio.gather(first, *queued)
        await batcher.stop(5)
        return done

    assert len(run(scenario())) == 4


def test_stopping_finishes_queued_work_and_refuses_new_work():
    release = threading.Event()
    model = RecordingModel(delay=release)

    async def scenario():
        batcher = Batcher(model, workers=1, max_batch_size=1, max_latency_ms=0, max_queue=10)
        batcher.start()
        accepted = [asyncio.ensure_future(batcher.predict([np.ones((1, 2), dtype=np.float32)])) for _ in range(5)]
        await asyncio.sleep(0.01)
        stopping = asyncio.ensure_future(batcher.stop(10))
        await asyncio.sleep(0)
        with pytest.raises(ShuttingDown):
            await batcher.predict([np.ones((1, 2), dtype=np.float32)])
        release.set()
        answers = await asyncio.gather(*accepted)
        await stopping
        return answers

    assert len(run(scenario())) == 5
    assert model.batches == [1] * 5


def test_a_model_error_reaches_every_caller_of_that_batch_and_the_batcher_carries_on():
    calls = []

    def flaky(inputs):
        calls.append(len(inputs[0]))
        if len(calls) == 1:
            raise ValueError("boom")
        return inputs

    async def scenario():
        batcher = Batcher(flaky, workers=1, max_batch_size=8, max_latency_ms=0, max_queue=10)
        batcher.start()
        with pytest.raises(ValueError):
            await batcher.predict([np.ones((1, 2), dtype=np.float32)])
        answer = await batcher.predict([np.ones((1, 2), dtype=np.float32)])
        await batcher.stop(5)
        return answer

    assert run(scenario())[0].tolist() == [[1.0, 1.0]]


def test_requests_of_several_n_d_inputs_batch_along_the_first_dimension_of_each():
    batches = []

    def model(inputs):
        images, scale = inputs          # [n, 4, 4, 1] and [n, 1]
        batches.append((images.shape, scale.shape))
        return [images.sum(axis=(1, 2, 3)) * scale[:, 0], images[:, :2, :2, 0]]

    async def scenario():
        batcher = Batcher(model, workers=1, max_batch_size=64, max_latency_ms=50, max_queue=100)
        batcher.start()
        requests = [[np.full((1 + i % 2, 4, 4, 1), i, np.uint8), np.full((1 + i % 2, 1), 2.0, np.float32)]
                    for i in range(20)]
        answers = await asyncio.gather(*(batcher.predict(r) for r in requests))
        await batcher.stop(5)
        return requests, answers

    requests, answers = run(scenario())
    for (images, _), (sums, corners) in zip(requests, answers):
        assert sums.tolist() == [32.0 * images[0, 0, 0, 0]] * len(images)
        assert corners.shape == (len(images), 2, 2) and (corners == images[0, 0, 0, 0]).all()
    assert len(batches) < len(requests) and all(s[0][1:] == (4, 4, 1) for s in batches)
