"""Micro-batching: requests for one model wait in a bounded queue and are captioned together.

Each model gets one :class:`MicroBatcher` with one worker thread. The worker takes the first waiting
request, then gathers more for up to ``wait_ms`` when traffic is concurrent (or until ``batch_size``),
and captions them in as few ``caption()`` calls as there are different decodings among them. A model is therefore only ever called
from its own worker thread, one batch at a time, and many concurrent requests cost far fewer model
calls. A full queue refuses new work at once (:class:`Overloaded`); a request that waits longer than its
timeout gives up (:class:`RequestTimeout`) and is skipped if its turn has not come yet.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from captioner.errors import CaptionerError
from captioner.models.base import Caption, Captioner, Decoding

log = logging.getLogger(__name__)

_STOP = object()  # tells a worker to finish


class Overloaded(CaptionerError):
    """The model's queue is full: the client should retry a little later."""


class RequestTimeout(CaptionerError):
    """The caption did not come within the request's time limit."""


@dataclass
class Job:
    image: object  # a PIL RGB image from the safe loader
    decoding: Decoding | None  # None: the model's default decoding
    future: Future = field(default_factory=Future)
    enqueued_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchedCaption:
    """One request's caption and where its time went."""

    caption: Caption
    queue_ms: float  # from joining the queue to the start of its model call
    model_ms: float  # duration of the model call that captioned it (shared with its batch)
    batch_size: int  # images captioned in that call


@dataclass
class BatchStats:
    """Counters a batcher keeps; shown by /readyz and the benchmarks."""

    batches: int = 0  # model calls made
    images: int = 0  # images captioned
    largest_batch: int = 0  # most images in one model call
    rejected: int = 0  # requests refused because the queue was full
    timed_out: int = 0  # requests that gave up waiting
    failed: int = 0  # images whose model call raised

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class MicroBatcher:
    """A bounded queue and a worker thread in front of one captioner."""

    def __init__(self, captioner: Captioner, batch_size: int = 8, wait_ms: float = 5.0, queue_size: int = 64):
        if batch_size < 1 or queue_size < 1 or wait_ms < 0:
            raise ValueError("batch size and queue size must be at least 1 and the wait must not be negative")
        self.captioner = captioner
        self.batch_size = batch_size
        self.wait_s = wait_ms / 1000
        self.stats = BatchStats()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._last_batch = 0  # images in the last gathered batch
        self._thread = threading.Thread(target=self._work, name=f"batcher-{captioner.name}", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def snapshot(self) -> dict:
        with self._lock:
            data = self.stats.to_dict()
        return {**data, "queue_depth": self.queue_depth, "batch_size": self.batch_size,
                "batch_wait_ms": self.wait_s * 1000}

    def submit(self, image, decoding: Decoding | None = None) -> Job:
        job = Job(image, decoding)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._count(rejected=1)
            raise Overloaded(f"model {self.captioner.name!r} is busy ({self._queue.maxsize} requests waiting); "
                             "try again in a moment") from None
        return job

    def wait(self, job: Job, timeout: float) -> BatchedCaption:
        """The job's result, or :class:`RequestTimeout` after ``timeout`` seconds (the job is then dropped)."""
        try:
            return job.future.result(timeout=timeout)
        except FutureTimeout:
            job.future.cancel()  # skipped by the worker if it has not started yet
            self._count(timed_out=1)
            raise RequestTimeout(f"model {self.captioner.name!r} took longer than {timeout:g} s; "
                                 "try again, or with a smaller beam") from None

    def caption(self, image, decoding: Decoding | None = None, timeout: float = 30.0) -> BatchedCaption:
        return self.wait(self.submit(image, decoding), timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker after the work already queued."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # -- the worker -----------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            groups: dict[Decoding | None, list[Job]] = {}
            for job in batch:
                if job.future.set_running_or_notify_cancel():  # False: it timed out while waiting
                    groups.setdefault(job.decoding, []).append(job)
            for decoding, jobs in groups.items():
                self._run(jobs, decoding)
            if stop:
                return

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        """The first job plus whatever joins within the wait window, up to the batch size.

        The window only opens under concurrent traffic (others already waiting, or the last batch held
        more than one image): a lone client never waits for company that is not coming.
        """
        batch = [first]
        concurrent = self._last_batch > 1 or not self._queue.empty()
        deadline = time.perf_counter() + (self.wait_s if concurrent else 0.0)
        while len(batch) < self.batch_size:
            remaining = deadline - time.perf_counter()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            batch.append(job)
        self._last_batch = len(batch)
        return batch, False

    def _run(self, jobs: list[Job], decoding: Decoding | None) -> None:
        started = time.perf_counter()
        try:
            captions = self.captioner.caption([job.image for job in jobs], decoding=decoding)
            if len(captions) != len(jobs):
                raise RuntimeError(f"model returned {len(captions)} captions for {len(jobs)} images")
        except Exception as error:  # the model failed: every request of the batch gets the error
            log.exception("model %s failed on a batch of %d", self.captioner.name, len(jobs))
            self._count(batches=1, failed=len(jobs))
            for job in jobs:
                job.future.set_exception(error)
            return
        model_ms = (time.perf_counter() - started) * 1000
        self._count(batches=1, images=len(jobs), largest=len(jobs))
        for job, caption in zip(jobs, captions):
            queue_ms = (started - job.enqueued_at) * 1000
            job.future.set_result(BatchedCaption(caption, round(queue_ms, 2), round(model_ms, 2), len(jobs)))

    def _count(self, batches=0, images=0, largest=0, rejected=0, timed_out=0, failed=0) -> None:
        with self._lock:
            self.stats.batches += batches
            self.stats.images += images
            self.stats.largest_batch = max(self.stats.largest_batch, largest)
            self.stats.rejected += rejected
            self.stats.timed_out += timed_out
            self.stats.failed += failed
