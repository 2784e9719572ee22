"""The batched, cached :class:`Scorer`: the one entry point that turns StepInputs into dimension scores.

Every face of the package (TRL reward functions, Gymnasium wrappers, search, evaluation, the reward server)
scores through a :class:`Scorer`. It

- deduplicates the request and answers repeated steps from an LRU cache keyed by the content hash
  :attr:`StepInput.key`;
- batches the candidates of one state (same :attr:`StepInput.prompt_key`) together, so the model's prompt-once
  path encodes each state once, and orders states by length (less padding);
- calls ``model.score_steps(batch)`` under :func:`torch.inference_mode` with at most ``batch_size`` steps;
- counts model calls (:attr:`Scorer.forward_calls`) and cache hits (:attr:`Scorer.cache_hits`);
- is safe to call from several threads (one lock around the cache and the model call).

The model is anything with ``score_steps(steps) -> Tensor | array (B, 6)`` whose columns follow
:data:`similar_rl.dimensions.SCORE_KEYS`, e.g. :class:`similar_rl.model.SimilarRewardModel`.

Example:
    >>> import torch
    >>> from similar_rl import StepInput
    >>> class LengthModel:  # a stand-in with the model's interface
    ...     def score_steps(self, steps):
    ...         return torch.tensor([[len(s.action)] * 6 for s in steps], dtype=torch.float32)
    >>> scorer = Scorer(LengthModel(), batch_size=8)
    >>> step = StepInput("Click OK", "click(ref=4)")
    >>> scorer.score([step, step])[0]["total"]
    12.0
    >>> scorer.score_one(step)["helpfulness"], scorer.forward_calls, scorer.cache_hits
    (12.0, 1, 2)
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from similar_rl.dimensions import SCORE_KEYS
from similar_rl.types import DimensionScores, StepInput

logger = logging.getLogger(__name__)

__all__ = ["Scorer", "as_scorer"]


def _state_length(step: StepInput) -> int:
    """A cheap size of the state side, used to batch similar lengths together."""
    return len(step.instruction) + len(step.observation_text or "") + sum(len(h) + 1 for h in step.history)


class Scorer:
    """Batched, cached, thread-safe scoring of :class:`~similar_rl.types.StepInput` objects.

    Args:
        model: an object with ``score_steps(steps) -> (B, 6)`` in :data:`~similar_rl.dimensions.SCORE_KEYS`
            order (a :class:`similar_rl.model.SimilarRewardModel`). A ``torch.nn.Module`` is switched to eval
            mode (the gate's dropout would otherwise make rewards random) and moved to ``device`` if given.
        batch_size: most steps per model call.
        cache_size: how many step scores the LRU cache keeps (0 disables it).
        device: optional torch device for the model (e.g. ``"cuda"``); None leaves it where it is.

    Attributes:
        forward_calls: number of ``model.score_steps`` calls so far.
        cache_hits: number of requested steps answered without the model (from the cache or a duplicate).
        steps_scored: number of steps the model scored.
    """

    def __init__(self, model: Any, batch_size: int = 32, cache_size: int = 4096, device: Any = None) -> None:
        if isinstance(model, Scorer):
            raise TypeError(
                "model is already a Scorer; use similar_rl.scoring.as_scorer(obj) to accept either"
            )
        if not callable(getattr(model, "score_steps", None)):
            raise TypeError(
                f"model must have a score_steps(steps) method (a SimilarRewardModel), got {type(model).__name__}"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an integer >= 0 (0 disables the cache), got {cache_size!r}")
        self.model = model
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.device = device
        torch = _torch_or_none()
        if torch is not None and isinstance(model, torch.nn.Module):
            if device is not None:
                model.to(device)
            model.eval()
        self.forward_calls = 0
        self.cache_hits = 0
        self.steps_scored = 0
        self._cache: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._lock = threading.RLock()

    # -- pickling: the lock cannot be pickled; the cache is not worth shipping --------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_cache"] = OrderedDict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"Scorer(model={type(self.model).__name__}, batch_size={self.batch_size}, cache_size={self.cache_size}, "
            f"forward_calls={self.forward_calls}, cache_hits={self.cache_hits})"
        )

    def clear_cache(self) -> None:
        """Forget cached scores (e.g. after the model's weights changed)."""
        with self._lock:
            self._cache.clear()

    def score_one(self, step: StepInput) -> DimensionScores:
        """Score one step."""
        return self.score([step])[0]

    def score(self, steps: Sequence[StepInput]) -> list[DimensionScores]:
        """Score steps; returns one dict per step with the five dimensions and ``total``, in input order.

        Raises:
            TypeError: an item is not a StepInput.
            ValueError: the model returned the wrong shape or non-finite scores.
        """
        steps = list(steps)
        for i, step in enumerate(steps):
            if not isinstance(step, StepInput):
                raise TypeError(f"steps[{i}] must be a similar_rl.StepInput, got {type(step).__name__}")
        if not steps:
            return []
        keys = [step.key for step in steps]
        with self._lock:
            found: dict[str, tuple[float, ...]] = {}
            todo: dict[str, StepInput] = {}
            for key, step in zip(keys, steps, strict=True):
                if key in found or key in todo:
                    self.cache_hits += 1
                elif key in self._cache:
                    self._cache.move_to_end(key)
                    found[key] = self._cache[key]
                    self.cache_hits += 1
                else:
                    todo[key] = step
            for batch in self._plan_batches(list(todo.values())):
                for step, row in zip(batch, self._forward(batch), strict=True):
                    found[step.key] = row
                    if self.cache_size:
                        self._cache[step.key] = row
                        if len(self._cache) > self.cache_size:  # evict the least recently used
                            self._cache.popitem(last=False)
        return [dict(zip(SCORE_KEYS, found[key], strict=True)) for key in keys]

    def _plan_batches(self, steps: list[StepInput]) -> list[list[StepInput]]:
        """Group candidates of one state together, order states by length, pack groups into batches."""
        groups: dict[str, list[StepInput]] = {}
        for step in steps:
            groups.setdefault(step.prompt_key, []).append(step)
        ordered = sorted(groups.values(), key=lambda g: _state_length(g[0]), reverse=True)
        batches: list[list[StepInput]] = []
        current: list[StepInput] = []
        for group in ordered:
            if current and len(current) + len(group) > self.batch_size:
                batches.append(current)
                current = []
            while len(group) > self.batch_size:  # a state with more candidates than a batch holds
                batches.append(group[: self.batch_size])
                group = group[self.batch_size :]
            current.extend(group)
        if current:
            batches.append(current)
        return batches

    def _forward(self, batch: list[StepInput]) -> list[tuple[float, ...]]:
        torch = _torch_or_none()
        with torch.inference_mode() if torch is not None else contextlib.nullcontext():
            out = self.model.score_steps(batch)
        if torch is not None and isinstance(out, torch.Tensor):
            out = out.detach().float().cpu()  # float32 rows, as the model's dtype may be lower
        self.forward_calls += 1
        self.steps_scored += len(batch)
        rows = [tuple(float(v) for v in row) for row in (out.tolist() if hasattr(out, "tolist") else out)]
        if len(rows) != len(batch) or any(len(row) != len(SCORE_KEYS) for row in rows):
            shape = (len(rows), len(rows[0]) if rows else 0)
            raise ValueError(
                f"{type(self.model).__name__}.score_steps returned shape {shape} for {len(batch)} steps; "
                f"expected ({len(batch)}, {len(SCORE_KEYS)}) with columns {SCORE_KEYS}"
            )
        for step, row in zip(batch, rows, strict=True):
            if not all(math.isfinite(v) for v in row):
                raise ValueError(
                    f"{type(self.model).__name__}.score_steps returned non-finite scores {row} for the step "
                    f"with action {step.action!r} (key {step.key}); check the model's weights"
                )
        return rows


def _torch_or_none() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def as_scorer(model_or_scorer: Any, **scorer_kwargs: Any) -> Any:
    """Return ``model_or_scorer`` if it already scores steps (a :class:`Scorer` or anything with
    ``score(steps)``), else wrap a model (anything with ``score_steps``) in a new :class:`Scorer`.

    Example:
        >>> class M:
        ...     def score_steps(self, steps):
        ...         return [[0.0] * 6 for _ in steps]
        >>> s = as_scorer(M(), batch_size=4)
        >>> as_scorer(s) is s, s.batch_size
        (True, 4)
    """
    if isinstance(model_or_scorer, Scorer):
        if scorer_kwargs:
            logger.debug("as_scorer: ignoring %s for an existing Scorer", sorted(scorer_kwargs))
        return model_or_scorer
    if callable(getattr(model_or_scorer, "score_steps", None)):
        return Scorer(model_or_scorer, **scorer_kwargs)
    if callable(getattr(model_or_scorer, "score", None)):
        return model_or_scorer
    raise TypeError(
        "expected a SimilarRewardModel (with score_steps) or a Scorer (with score), "
        f"got {type(model_or_scorer).__name__}"
    )
