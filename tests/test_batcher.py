"""The micro-batcher on its own: jobs queued together share a run, and each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from serving.batcher import MicroBatcher


class GatedModel:
    """A stand-in model: each row's result is its image's first pixel; runs wait for ``gate``."""

    def __init__(self, fail_when=None):
        self.gate = threading.Event()
        self.started = threading.Event()
        self.batches: list[list[int]] = []
        self.fail_when = fail_when

    def __call__(self, images: np.ndarray) -> list[int]:
        self.started.set()
        self.gate.wait(30)
        rows = [int(image[0, 0]) for image in images]
        self.batches.append(rows)
        if self.fail_when is not None and self.fail_when in rows:
            raise ValueError("the model failed")
        return rows


def job(*values: int) -> np.ndarray:
    return np.stack([np.full((2, 3), v, np.uint8) for v in values])


async def _submit_while_first_runs(batcher: MicroBatcher, model: GatedModel, first, rest):
    """Submit ``first``; once the model is busy with it, queue ``rest``; then let the model go."""
    head = asyncio.ensure_future(batcher.submit(first))
    await asyncio.to_thread(model.started.wait, 30)
    tails = [asyncio.ensure_future(batcher.submit(images)) for images in rest]
    while batcher.queued_images() < sum(len(images) for images in rest):
        await asyncio.sleep(0.001)
    model.gate.set()
    return await asyncio.gather(head, *tails, return_exceptions=True)


def test_jobs_queued_while_the_model_runs_share_the_next_run_and_get_their_own_rows():
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch=64)
    try:
        results = asyncio.run(_submit_while_first_runs(batcher, model, job(1), [job(2, 3), job(4), job(5, 6, 7)]))
    finally:
        batcher.stop()
    assert model.batches == [[1], [2, 3, 4, 5, 6, 7]]
    assert [rows for rows, _ in results] == [[1], [2, 3], [4], [5, 6, 7]]
    assert [run.requests for _, run in results] == [1, 3, 3, 3]
    assert results[1][1].images == 6 and batcher.stats.jobs == 4 and batcher.stats.runs == 2


def test_a_run_takes_whole_jobs_up_to_the_batch_bound():
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch=4)
    try:
        results = asyncio.run(_submit_while_first_runs(batcher, model, job(1), [job(2, 3), job(4, 5), job(6)]))
    finally:
        batcher.stop()
    # 2+2 fill the bound; the third job waits for the next run instead of being split.
    assert model.batches == [[1], [2, 3, 4, 5], [6]]
    assert [rows for rows, _ in results] == [[1], [2, 3], [4, 5], [6]]


def test_a_job_larger_than_the_bound_runs_alone_and_whole():
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch=2)
    try:
        results = asyncio.run(_submit_while_first_runs(batcher, model, job(1), [job(2, 3, 4), job(5)]))
    finally:
        batcher.stop()
    assert model.batches == [[1], [2, 3, 4], [5]]
    assert [rows for rows, _ in results] == [[1], [2, 3, 4], [5]]


def test_a_failed_run_fails_its_jobs_and_the_next_run_still_serves():
    model = GatedModel(fail_when=3)
    batcher = MicroBatcher(model, max_batch=64)
    try:
        results = asyncio.run(_submit_while_first_runs(batcher, model, job(1), [job(2, 3), job(4)]))
        after = asyncio.run(batcher.submit(job(9)))
    finally:
        batcher.stop()
    assert results[0][0] == [1]
    assert all(isinstance(r, ValueError) for r in results[1:])
    assert after[0] == [9]


def test_a_lone_request_does_not_wait_for_company():
    model = GatedModel()
    model.gate.set()
    # A wait this long would show in any timing; instead: nothing is being decoded, so the run
    # starts with the one job and the batcher never waited (it counts no expected requests).
    batcher = MicroBatcher(model, max_batch=64, max_wait_s=30)
    try:
        rows, run = asyncio.run(asyncio.wait_for(batcher.submit(job(7)), timeout=10))
    finally:
        batcher.stop()
    assert rows == [7] and run.requests == 1


def test_a_run_waits_for_a_request_still_being_decoded():
    model = GatedModel()
    model.gate.set()
    batcher = MicroBatcher(model, max_batch=64, max_wait_s=30)

    async def scenario():
        with batcher.expecting() as ticket:  # a second request is being decoded
            first = asyncio.ensure_future(batcher.submit(job(1)))
            await asyncio.sleep(0.05)
            assert not first.done()  # the run waits for it ...
            return await asyncio.gather(first, batcher.submit(job(2), ticket))

    try:
        results = asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    finally:
        batcher.stop()
    assert model.batches == [[1, 2]]  # ... and both are read in one run
    assert [rows for rows, _ in results] == [[1], [2]]


def test_a_request_that_fails_to_decode_stops_the_run_waiting_for_it():
    model = GatedModel()
    model.gate.set()
    batcher = MicroBatcher(model, max_batch=64, max_wait_s=30)

    async def scenario():
        first = None
        try:
            with batcher.expecting():
                first = asyncio.ensure_future(batcher.submit(job(1)))
                await asyncio.sleep(0.05)
                raise ValueError("unreadable image")
        except ValueError:
            pass
        return await first

    try:
        rows, run = asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    finally:
        batcher.stop()
    assert rows == [1] and run.requests == 1


def test_stopping_fails_waiting_jobs_instead_of_hanging():
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch=1)

    async def scenario():
        head = asyncio.ensure_future(batcher.submit(job(1)))
        await asyncio.to_thread(model.started.wait, 30)
        queued = asyncio.ensure_future(batcher.submit(job(2)))
        while batcher.queued_images() < 1:
            await asyncio.sleep(0.001)
        batcher.stop()
        model.gate.set()
        return await asyncio.gather(head, queued, return_exceptions=True)

    head, queued = asyncio.run(asyncio.wait_for(scenario(), timeout=20))
    assert head[0] == [1]
    assert isinstance(queued, RuntimeError)


def test_bounds_must_make_sense():
    with pytest.raises(ValueError):
        MicroBatcher(lambda images: images, max_batch=0)
