"""Requests that arrive together are read together: one model run for several requests' images.

Each request's images (already decoded and preprocessed, so they cannot fail) are submitted as
one job; the inference thread takes the oldest job and, while the batch holds fewer than
``max_batch`` images, adds the jobs queued behind it whole. It waits up to ``max_wait_s`` for
more only while other requests are still being decoded (they announce themselves with
``expecting``): a lone client never waits, and eight clients share one run instead of eight.

A job is never split and never mixed with another's failure: every item of a request was
checked before it got here, and each job gets back exactly its own rows of the batch's results.
A job larger than ``max_batch`` (up to the request limit) runs alone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_WAIT_S = 0.001


@dataclass
class _Job:
    images: np.ndarray
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class _Ticket:
    used: bool = False


@dataclass(frozen=True)
class SharedRun:
    """The model run a job was read in: its images and the requests (jobs) they came from."""

    images: int
    requests: int

    def header(self) -> str:
        return f"images={self.images}; requests={self.requests}"


@dataclass
class BatchStats:
    """What the batcher did, for the logs and the bench."""

    runs: int = 0
    jobs: int = 0
    images: int = 0
    largest_batch: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "jobs": self.jobs, "images": self.images, "largest_batch": self.largest_batch,
                "jobs_per_run": round(self.jobs / self.runs, 2) if self.runs else None}  # fmt: skip


class MicroBatcher:
    """Runs ``run(images) -> one result per image`` on its own thread, over batches of jobs."""

    def __init__(
        self,
        run: Callable[[np.ndarray], Sequence[Any]],
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        name: str = "wordocr-infer",
    ):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"need max_batch >= 1 and max_wait_s >= 0, got {max_batch}, {max_wait_s}")
        self._run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.stats = BatchStats()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._expected = 0  # requests being decoded that will submit a job soon
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def expecting(self):
        """Around a request's decoding and its ``submit(images, ticket)``: the batcher may wait for
        it to join the current batch. Submitting with the ticket hands the expectation over to the
        queued job in one step, so a run never starts in the gap between the two."""
        ticket = _Ticket()
        with self._changed:
            self._expected += 1
        try:
            yield ticket
        finally:
            if not ticket.used:  # decoding failed, or the job was never submitted
                with self._changed:
                    self._expected -= 1
                    self._changed.notify()

    async def submit(self, images: np.ndarray, ticket: _Ticket | None = None) -> tuple[list[Any], SharedRun]:
        """The results for ``images`` (``[n, H, W]``), read in a batch with whatever else is queued,
        and what that model run held."""
        loop = asyncio.get_running_loop()
        job = _Job(images, loop, loop.create_future())
        with self._changed:
            if ticket is not None and not ticket.used:
                ticket.used = True
                self._expected -= 1
            if self._stopped:
                self._changed.notify()
                raise RuntimeError("the inference thread has stopped")
            self._jobs.append(job)
            self._changed.notify()
        return await job.future

    def queued_images(self) -> int:
        with self._changed:
            return sum(len(job.images) for job in self._jobs)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    # ------------------------------------------------------------------ the inference thread

    def _take(self) -> list[_Job] | None:
        with self._changed:
            while not self._jobs and not self._stopped:
                self._changed.wait()
            if self._stopped:
                return None
            batch = [self._jobs.popleft()]
            size = len(batch[0].images)
            deadline = time.perf_counter() + self.max_wait_s
            while size < self.max_batch:
                if self._jobs:
                    if size + len(self._jobs[0].images) > self.max_batch:
                        break
                    job = self._jobs.popleft()
                    batch.append(job)
                    size += len(job.images)
                    continue
                remaining = deadline - time.perf_counter()
                if self._expected == 0 or remaining <= 0:
                    break
                self._changed.wait(remaining)
            return batch

    def _serve(self) -> None:
        while (batch := self._take()) is not None:
            images = batch[0].images if len(batch) == 1 else np.concatenate([job.images for job in batch])
            try:
                results = list(self._run(images))
                if len(results) != len(images):
                    raise RuntimeError(f"the model gave {len(results)} results for {len(images)} images")
            except BaseException as exc:  # every job of the batch hears of it; the thread carries on
                log.exception("a batch of %d images from %d requests failed", len(images), len(batch))
                for job in batch:
                    job.loop.call_soon_threadsafe(_fail, job.future, exc)
                continue
            self.stats.runs += 1
            self.stats.jobs += len(batch)
            self.stats.images += len(images)
            self.stats.largest_batch = max(self.stats.largest_batch, len(images))
            run, start = SharedRun(len(images), len(batch)), 0
            for job in batch:
                end = start + len(job.images)
                job.loop.call_soon_threadsafe(_resolve, job.future, (results[start:end], run))
                start = end
        # Stopped: whoever still waits hears so instead of hanging.
        with self._changed:
            leftover, self._jobs = list(self._jobs), collections.deque()
        for job in leftover:
            with contextlib.suppress(RuntimeError):  # its event loop may be closed already
                job.loop.call_soon_threadsafe(_fail, job.future, RuntimeError("the inference thread has stopped"))


def _resolve(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
