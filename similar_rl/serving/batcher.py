"""Dynamic batching: requests from many threads are gathered for a few milliseconds, then scored in ONE call.

Example:
    >>> import torch
    >>> from similar_rl import StepInput
    >>> from similar_rl.scoring import Scorer
    >>> class LengthModel:
    ...     def score_steps(self, steps):
    ...         return torch.tensor([[float(len(s.action))] * 6 for s in steps])
    >>> batcher = DynamicBatcher(Scorer(LengthModel()), max_batch=8, max_wait_s=0.001).start()
    >>> batcher.submit([StepInput("Click OK", "noop()")], timeout=5.0)[0]["total"]
    6.0
    >>> batcher.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from similar_rl.types import DimensionScores, StepInput
from similar_rl.types import Scorer as ScorerLike

logger = logging.getLogger(__name__)

__all__ = ["DynamicBatcher", "Overloaded", "ScoringFailed"]


class Overloaded(RuntimeError):
    """The queue is full: the request was not accepted (the server answers 503)."""


class ScoringFailed(RuntimeError):
    """The scorer raised while scoring this request (the server answers 500)."""


@dataclass(eq=False)
class _Pending:
    steps: list[StepInput]
    enqueued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: list[DimensionScores] | None = None
    error: str | None = None


class DynamicBatcher:
    """Gathers concurrent :meth:`submit` calls into batches of at most ``max_batch`` steps and scores each batch
    with one ``scorer.score`` call on a background thread.

    A batch starts when ``max_wait_s`` has passed since its oldest request arrived or when ``max_batch`` steps
    are waiting, whichever comes first. While a batch is being scored new requests queue up and form the next
    one, so under load batches fill without any added wait.

    Args:
        scorer: anything with ``score(list[StepInput]) -> list[dict]`` (a :class:`similar_rl.scoring.Scorer`).
        max_batch: most steps per scorer call (a larger request is scored alone, in one call).
        max_wait_s: how long the oldest request waits for company.
        max_queue: most steps waiting; :meth:`submit` raises :class:`Overloaded` beyond it.

    Attributes:
        batches: scorer calls made.
        steps: steps scored.
        max_batch_seen: the largest batch (in steps).
    """

    def __init__(
        self, scorer: ScorerLike, max_batch: int = 64, max_wait_s: float = 0.005, max_queue: int = 4096
    ) -> None:
        if not callable(getattr(scorer, "score", None)):
            raise TypeError(f"scorer must have a score(steps) method, got {type(scorer).__name__}")
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_s >= 0")
        self.scorer = scorer
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.batches = 0
        self.steps = 0
        self.max_batch_seen = 0
        self.failures = 0
        self._queue: deque[_Pending] = deque()
        self._queued_steps = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def queue_depth(self) -> int:
        """Steps waiting (not yet taken into a batch)."""
        return self._queued_steps

    @property
    def queued_requests(self) -> int:
        return len(self._queue)

    @property
    def alive(self) -> bool:
        """Whether the batching thread runs (a dead one answers nothing: the server reports unhealthy)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> DynamicBatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="similar-rl-batcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; requests still queued fail with :class:`ScoringFailed`."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._cond:
            while self._queue:
                item = self._queue.popleft()
                item.error = "the server is shutting down"
                item.done.set()
            self._queued_steps = 0

    def submit(self, steps: Sequence[StepInput], timeout: float) -> list[DimensionScores]:
        """Queue ``steps``, wait for their scores (at most ``timeout`` seconds) and return them.

        Raises:
            Overloaded: the queue holds ``max_queue`` steps already.
            TimeoutError: no answer within ``timeout``; the request is dropped from the queue if still there.
            ScoringFailed: the scorer raised for this request.
        """
        item = _Pending(list(steps))
        if not item.steps:
            return []
        with self._cond:
            if self._stopped:
                raise ScoringFailed("the server is shutting down")
            if self._queued_steps + len(item.steps) > self.max_queue:
                raise Overloaded(
                    f"{self._queued_steps} steps are queued; the queue holds at most {self.max_queue} (retry later)"
                )
            self._queue.append(item)
            self._queued_steps += len(item.steps)
            self._cond.notify_all()
        if not item.done.wait(timeout):
            with self._cond:
                if item in self._queue:  # else it is being scored; its answer is dropped
                    self._queue.remove(item)
                    self._queued_steps -= len(item.steps)
            raise TimeoutError(f"no scores within {timeout:g} s")
        if item.error is not None:
            raise ScoringFailed(item.error)
        assert item.result is not None
        return item.result

    def _take_batch(self) -> list[_Pending] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._stopped)
            if self._stopped:
                return None
            deadline = self._queue[0].enqueued + self.max_wait_s
            self._cond.wait_for(
                lambda: self._queued_steps >= self.max_batch or self._stopped or not self._queue,
                deadline - time.monotonic(),
            )
            batch: list[_Pending] = []
            size = 0
            while self._queue and (not batch or size + len(self._queue[0].steps) <= self.max_batch):
                item = self._queue.popleft()  # queued items are never cancelled: submit removes them first
                self._queued_steps -= len(item.steps)
                batch.append(item)
                size += len(item.steps)
            return batch

    def _loop(self) -> None:
        while (batch := self._take_batch()) is not None:
            if batch:
                self._score(batch)

    def _score(self, batch: list[_Pending]) -> None:
        steps = [step for item in batch for step in item.steps]
        try:
            scores = self.scorer.score(steps)
        except Exception as exc:  # recorded: each request is retried alone so one bad request fails alone
            logger.warning(
                "scoring a batch of %d requests failed (%s); retrying them one by one", len(batch), exc
            )
            if len(batch) > 1:
                for item in batch:
                    self._score([item])
            else:
                self.failures += 1
                batch[0].error = f"{type(exc).__name__}: {exc}"
                batch[0].done.set()
            return
        self.batches += 1
        self.steps += len(steps)
        self.max_batch_seen = max(self.max_batch_seen, len(steps))
        start = 0
        for item in batch:
            item.result = scores[start : start + len(item.steps)]
            start += len(item.steps)
            item.done.set()
