"""TRL reward functions: Similar's ``total`` and its five dimensions as dense rewards for GRPO / RLOO.

:func:`similar_reward_funcs` returns one callable per reward (``similar_total``, ``similar_helpfulness``, ...)
for a TRL trainer's ``reward_funcs``; weight them with the config's ``reward_weights`` (``[1, 0, 0, 0, 0, 0]``
trains on ``total`` and logs every dimension). They share one :class:`SimilarBatchScores`: ONE batched scorer
call per training step, the first function called scoring the batch and its siblings reusing the result.

What the functions read (TRL passes every extra dataset column as a keyword, one value per completion):

========================== =========================================================================================
``completions``            the policy's output; the action is the last well-formed action string in it
                           (:func:`similar_rl.envs.actions.extract_action`). Plain text or conversational
                           (``[{"role": "assistant", "content": ...}]``). Unparsable -> ``invalid_penalty``.
``instruction`` column     the task instruction. Without it, a line ``Instruction: ...`` (or ``Task: ...``) of the
                           prompt is used, else the text of the last user message.
``history`` column         previous action strings: a list, or one string with one action per line. Optional.
``observation_text`` col.  a text rendering of the screen (e.g. the DOM with element refs). Optional.
``screenshot`` column      the screenshot for the reward model only (PIL image or HxWx3 uint8 array). Use it
                           with a text-only policy: TRL feeds ``image``/``images`` columns to the policy too.
``image`` / ``images``     else the screenshot from these (PIL or array; for ``images`` the last one is used),
column                     else the last image in a conversational prompt. Optional.
``prompts``                plain strings or conversations (for the instruction/image fallbacks above).
``log_metric``             (TRL) each step logs ``similar/<dimension>`` means and ``similar/invalid_fraction``.
========================== =========================================================================================

Example:
    >>> import torch
    >>> class Toy:  # stands in for a SimilarRewardModel: every score is the action's length
    ...     def score_steps(self, steps):
    ...         return torch.tensor([[float(len(s.action))] * 6 for s in steps])
    >>> funcs = similar_reward_funcs(Toy(), dimensions=("helpfulness",))
    >>> [f.__name__ for f in funcs]
    ['similar_total', 'similar_helpfulness']
    >>> kwargs = dict(prompts=["Instruction: click OK"] * 2, completions=["click(ref=3)", "no idea"])
    >>> [f(**kwargs) for f in funcs]
    [[12.0, -1.0], [12.0, -1.0]]
    >>> funcs[0].batch_scores.scorer.forward_calls
    1
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from similar_rl.dimensions import DIMENSIONS, SCORE_KEYS, total_score, validate_weights
from similar_rl.envs.actions import ActionParseError, extract_action, format_action
from similar_rl.scoring import as_scorer
from similar_rl.types import DimensionScores, StepInput
from similar_rl.types import Scorer as ScorerLike

__all__ = [
    "SimilarBatchScores",
    "SimilarReward",
    "AsyncSimilarReward",
    "SampleStep",
    "similar_reward_funcs",
    "async_similar_reward_funcs",
    "step_inputs_from_columns",
    "trajectory_score",
]

_INSTRUCTION_LINE = re.compile(r"^\s*(?:instruction|task)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class SampleStep:
    """One scored completion, kept for logging (see :class:`similar_rl.tracking.SimilarTrackingCallback`).

    ``step`` and ``scores`` are None when the completion held no valid action.
    """

    completion: str
    step: StepInput | None
    scores: DimensionScores | None
    global_step: int | None = None


# -- reading the GUI state from TRL's arguments ------------------------------------------------------------------
def _message_text(content: Any) -> str:
    """Text of a message's content: a string or a list of parts ``{"type": "text", "text": ...}``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = [part for part in content if isinstance(part, Mapping) and part.get("type") == "text"]
        return "\n".join(part.get("text", "") for part in texts)
    raise TypeError(f"message content must be a string or a list of parts, got {type(content).__name__}")


def completion_text(completion: Any) -> str:
    """The text of a plain or conversational completion (the last assistant message).

    Example:
        >>> completion_text([{"role": "assistant", "content": "click(ref=1)"}])
        'click(ref=1)'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _message_text(completion.get("content"))
    if isinstance(completion, Sequence):
        texts = [(m.get("role", "assistant"), _message_text(m.get("content"))) for m in completion
                 if isinstance(m, Mapping)]  # fmt: skip
        assistant = [text for role, text in texts if role == "assistant"]
        return (assistant or [text for _, text in texts] or [""])[-1]
    raise TypeError(f"a completion must be a string or a list of messages, got {type(completion).__name__}")


def _prompt_user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        users = [m for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
        msgs = users or [m for m in prompt if isinstance(m, Mapping)]
        return _message_text(msgs[-1].get("content")) if msgs else ""
    raise TypeError(f"a prompt must be a string or a list of messages, got {type(prompt).__name__}")


def instruction_from_prompt(prompt: Any) -> str:
    """The instruction in a prompt: a line ``Instruction: ...`` / ``Task: ...``, else the last user message.

    Example:
        >>> instruction_from_prompt("Screen: ...\\nInstruction: Click OK\\nAnswer with one action.")
        'Click OK'
        >>> instruction_from_prompt([{"role": "user", "content": [{"type": "text", "text": "Click OK"}]}])
        'Click OK'
    """
    text = _prompt_user_text(prompt)
    match = _INSTRUCTION_LINE.search(text)
    return (match.group(1) if match else text).strip()


def _prompt_image(prompt: Any) -> Any:
    if isinstance(prompt, str) or not isinstance(prompt, Sequence):
        return None
    image = None
    for message in prompt:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, Sequence) and not isinstance(content, str):
            for part in content:
                if (
                    isinstance(part, Mapping)
                    and part.get("type") == "image"
                    and part.get("image") is not None
                ):
                    image = part["image"]
    return image


def _history(value: Any, row: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(line.strip() for line in value.splitlines() if line.strip())
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(
        f"history column, row {row}: expected a list of action strings or one newline-joined string, "
        f"got {type(value).__name__}"
    )


def _column(kwargs: Mapping[str, Any], name: str, n: int) -> list[Any]:
    values = kwargs.get(name)
    if values is None:
        return [None] * n
    sized = isinstance(values, Sequence) and not isinstance(values, str)
    if not sized or len(values) != n:
        got = len(values) if sized else type(values).__name__
        raise ValueError(f"column {name!r} must hold one value per completion ({n}); got {got}")
    return list(values)


def step_inputs_from_columns(
    prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
) -> tuple[list[StepInput | None], list[str]]:
    """Build one :class:`StepInput` per completion from TRL's arguments (see the module docstring).

    Returns:
        (steps, texts): ``steps[i]`` is None when completion ``i`` holds no valid action; ``texts[i]`` is the
        completion's text.

    Example:
        >>> steps, _ = step_inputs_from_columns(
        ...     ["Click OK"], ["I will click(ref=4)"], history=["click(ref=1)\\nnoop()"])
        >>> steps[0].instruction, steps[0].action, steps[0].history
        ('Click OK', 'click(ref=4)', ('click(ref=1)', 'noop()'))
    """
    n = len(completions)
    if len(prompts) != n:
        raise ValueError(
            f"got {len(prompts)} prompts for {n} completions; TRL passes one prompt per completion"
        )
    names = ("instruction", "history", "observation_text", "screenshot", "image", "images")
    rows = enumerate(zip(prompts, completions, *(_column(columns, name, n) for name in names), strict=True))
    steps: list[StepInput | None] = []
    texts: list[str] = []
    for i, (prompt, completion, instruction, history, observation, screenshot, image, images) in rows:
        text = completion_text(completion)
        texts.append(text)
        try:
            action = format_action(extract_action(text))
        except ActionParseError:
            steps.append(None)
            continue
        instruction = instruction or instruction_from_prompt(prompt)
        if not instruction:
            raise ValueError(
                f"row {i}: no instruction: add an 'instruction' column to the dataset or a line "
                "'Instruction: ...' to the prompt"
            )
        image = screenshot if screenshot is not None else image
        if image is None and images:
            image = images[-1]
        if image is None:
            image = _prompt_image(prompt)
        steps.append(StepInput(str(instruction), action, _history(history, i), image, observation))
    return steps, texts


# -- the shared batch scorer --------------------------------------------------------------------------------------
class SimilarBatchScores:
    """Scores one TRL batch once and shares the result between sibling reward functions.

    Args:
        scorer: a :class:`similar_rl.scoring.Scorer` (or anything with ``score(steps)``).
        weights: optional dimension weights; when given, ``total`` is ``sum_k weights[k] * score_k`` instead of
            the model's gated total.
        log_metrics, metric_prefix: log each batch's means with TRL's ``log_metric`` as ``<prefix>/<key>``.
        keep_samples: how many recent :class:`SampleStep` records to keep for tracking (0: none).

    Attributes:
        batches_scored: batches scored so far (sibling calls that reuse a batch do not count).
        samples: recent :class:`SampleStep` records (newest last).
        pending_values: per-key lists of scores since the last :meth:`drain` (for histograms).
    """

    def __init__(
        self,
        scorer: ScorerLike,
        weights: Mapping[str, float] | None = None,
        log_metrics: bool = True,
        metric_prefix: str = "similar",
        keep_samples: int = 64,
    ) -> None:
        self.scorer = scorer
        self.weights = None if weights is None else validate_weights(weights)
        self.log_metrics = log_metrics
        self.metric_prefix = metric_prefix
        self.keep_samples = keep_samples
        self.batches_scored = 0
        self.samples: deque[SampleStep] = deque(maxlen=max(keep_samples, 1))
        self.pending_values: dict[str, list[float]] = {k: [] for k in (*SCORE_KEYS, "invalid")}
        self._last_key: str | None = None
        self._last: list[DimensionScores | None] = []
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_last_key"], state["_last"] = None, []
        state["samples"] = deque(maxlen=self.samples.maxlen)
        state["pending_values"] = {k: [] for k in self.pending_values}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def drain(self) -> dict[str, list[float]]:
        """Return and reset the scores collected since the last call (``"invalid"``: 1.0/0.0 per completion)."""
        with self._lock:
            out = self.pending_values
            self.pending_values = {k: [] for k in out}
            return out

    def drain_samples(self) -> list[SampleStep]:
        """Return and forget the samples kept since the last call (newest last, at most ``keep_samples``)."""
        with self._lock:
            out = list(self.samples)
            self.samples.clear()
            return out

    def scores(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[DimensionScores | None]:
        """Per completion, the score dict (``None`` if it held no valid action). Scores a batch once."""
        steps, texts = step_inputs_from_columns(prompts, completions, **kwargs)
        global_step = getattr(kwargs.get("trainer_state"), "global_step", None)
        h = hashlib.blake2b(digest_size=16)
        h.update(repr(global_step).encode())
        for step in steps:
            h.update(step.key.encode() if step is not None else b"-")
        key = h.hexdigest()
        with self._lock:
            if key == self._last_key:
                return self._last
            valid = [s for s in steps if s is not None]
            scored = iter(self.scorer.score(valid) if valid else [])
            results = [None if s is None else self._weighted(next(scored)) for s in steps]
            self._last_key, self._last = key, results
            self.batches_scored += 1
            for step, text, scores in zip(steps, texts, results, strict=True):
                self.pending_values["invalid"].append(0.0 if scores is not None else 1.0)
                if scores is not None:
                    for k in SCORE_KEYS:
                        self.pending_values[k].append(scores[k])
                if self.keep_samples:
                    self.samples.append(SampleStep(text, step, scores, global_step))
        log_metric = kwargs.get("log_metric")
        if self.log_metrics and callable(log_metric):
            for name, value in self.batch_means(results).items():
                log_metric(f"{self.metric_prefix}/{name}", value)
        return results

    def _weighted(self, scores: DimensionScores) -> DimensionScores:
        if self.weights is None:
            return scores
        return {**scores, "total": total_score(scores, self.weights)}

    @staticmethod
    def batch_means(results: Sequence[DimensionScores | None]) -> dict[str, float]:
        """Mean of each score key over the valid completions, plus ``invalid_fraction``."""
        valid = [r for r in results if r is not None]
        out = {k: float(np.mean([r[k] for r in valid])) for k in SCORE_KEYS} if valid else {}
        out["invalid_fraction"] = 1.0 - len(valid) / len(results) if results else 0.0
        return out


# -- the reward callables -------------------------------------------------------------------------------------------
class SimilarReward:
    """A TRL reward function returning one score key (``"total"`` or a dimension) per completion.

    Built by :func:`similar_reward_funcs`; its ``__name__`` (``similar_<key>``) names TRL's logged columns.
    Instances pickle (the async GRPO worker pickles reward functions); siblings pickled together keep sharing
    one :class:`SimilarBatchScores`.
    """

    def __init__(
        self, key: str, batch_scores: SimilarBatchScores, invalid_penalty: float | None = -1.0
    ) -> None:
        if key not in SCORE_KEYS:
            raise ValueError(f"unknown score key {key!r}; expected one of {SCORE_KEYS}")
        if invalid_penalty is not None and not math.isfinite(invalid_penalty):
            raise ValueError(f"invalid_penalty must be a finite number or None, got {invalid_penalty!r}")
        self.key = key
        self.batch_scores = batch_scores
        self.invalid_penalty = invalid_penalty
        self.__name__ = f"similar_{key}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__name__})"

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        """Rewards for a batch. Keywords: TRL's (``completion_ids``, ``trainer_state``, ``log_metric``,
        ``log_extra``) and the dataset columns listed in :mod:`similar_rl.rewards`; others are ignored."""
        results = self.batch_scores.scores(prompts, completions, **kwargs)
        return [self.invalid_penalty if r is None else r[self.key] for r in results]


class AsyncSimilarReward(SimilarReward):
    """The asynchronous form of :class:`SimilarReward` for TRL's async reward path: the scorer runs in a worker
    thread, and siblings awaited concurrently still share one forward (the batch cache is locked)."""

    async def __call__(  # type: ignore[override]
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        return await asyncio.to_thread(super().__call__, prompts, completions, **kwargs)


def similar_reward_funcs(
    model_or_scorer: Any,
    dimensions: Sequence[str] = DIMENSIONS,
    include_total: bool = True,
    weights: Mapping[str, float] | None = None,
    invalid_penalty: float | None = -1.0,
    *,
    asynchronous: bool = False,
    log_metrics: bool = True,
    metric_prefix: str = "similar",
    keep_samples: int = 64,
    batch_size: int = 32,
    cache_size: int = 4096,
) -> list[Callable[..., Any]]:
    """TRL reward functions for ``total`` and each requested dimension, sharing one batched scorer call.

    Args:
        model_or_scorer: a SimilarRewardModel or a :class:`similar_rl.scoring.Scorer`.
        dimensions: dimension keys to return a function for (any of :data:`similar_rl.dimensions.DIMENSIONS`).
        include_total: put ``similar_total`` first.
        weights: optional dimension weights; ``similar_total`` then returns ``sum_k weights[k] * score_k``
            instead of the model's gated total (per-dimension functions are unchanged).
        invalid_penalty: reward of a completion without a valid action (every function returns it);
            None returns None, which TRL treats as "not applicable" (NaN, ignored in the sums).
        asynchronous: return ``async`` callables (:class:`AsyncSimilarReward`) for TRL's async reward path.
        log_metrics, metric_prefix: log batch means through TRL's ``log_metric`` as ``<metric_prefix>/<key>``.
        keep_samples: recent scored completions kept for :class:`similar_rl.tracking.SimilarTrackingCallback`.
        batch_size, cache_size: for the Scorer built when a model is given.

    Returns:
        ``[similar_total, similar_helpfulness, ...]`` in :data:`~similar_rl.dimensions.DIMENSIONS` order.
    """
    dims = list(dimensions)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s) {unknown}; choose from {DIMENSIONS}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dimensions has duplicates: {dims}; TRL needs a distinct name per reward function")
    keys = (["total"] if include_total else []) + [d for d in DIMENSIONS if d in dims]
    if not keys:
        raise ValueError("no reward functions requested: pass dimensions=... or include_total=True")
    scorer = as_scorer(model_or_scorer, batch_size=batch_size, cache_size=cache_size)
    shared = SimilarBatchScores(scorer, weights, log_metrics, metric_prefix, keep_samples)
    cls = AsyncSimilarReward if asynchronous else SimilarReward
    return [cls(key, shared, invalid_penalty) for key in keys]


def async_similar_reward_funcs(model_or_scorer: Any, **kwargs: Any) -> list[Callable[..., Any]]:
    """:func:`similar_reward_funcs` with ``asynchronous=True``."""
    return similar_reward_funcs(model_or_scorer, asynchronous=True, **kwargs)


def trajectory_score(
    step_scores: Sequence[Mapping[str, float]], key: str = "total", form: str = "min"
) -> float:
    """One scalar for a whole episode from its per-step scores (e.g. ``info["similar"]`` of each step).

    ``form="min"`` (the default) is the episode's weakest step: a single bad step cannot be bought back by many
    good ones, so an episode is not rewarded for padding itself with well-scored steps. ``"mean"`` is the average.

    Example:
        >>> trajectory_score([{"total": 2.0}, {"total": -1.0}, {"total": 3.0}])
        -1.0
        >>> trajectory_score([{"total": 2.0}, {"total": 4.0}], form="mean")
        3.0
    """
    if form not in ("min", "mean"):
        raise ValueError(f"form must be 'min' or 'mean', got {form!r}")
    if not step_scores:
        raise ValueError("an episode with no scored step has no trajectory score")
    values = [float(s[key]) for s in step_scores]
    return min(values) if form == "min" else sum(values) / len(values)
