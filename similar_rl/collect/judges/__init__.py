"""Judges of task relevance and coherence (the two judge-labelled Similar dimensions).

Every judge implements :class:`similar_rl.types.Judge`: ``judge(state, history, actions)`` returns one
:class:`~similar_rl.types.JudgeVerdict` per candidate action, in order. A verdict with ``task_relevance`` and
``coherence`` set to None and ``error`` set is a recorded failure (e.g. an endpoint that kept answering
garbage): callers store the labels as None, never a guess.

Built-in judges, created by name with :func:`make_judge`:

- ``"rule"``: :class:`~similar_rl.collect.judges.rule.RuleJudge`, rules over the DOM elements (no model).
- ``"openai"``: :class:`~similar_rl.collect.judges.openai_chat.OpenAIChatJudge`, any OpenAI-compatible chat
  endpoint (vLLM, TGI, OpenAI...), screenshot sent as an image.
- ``"local_vlm"``: :class:`~similar_rl.collect.judges.local_vlm.LocalVLMJudge`, a local transformers
  (vision-)language model.

Example:
    >>> from similar_rl.types import Element, GUIState
    >>> judge = make_judge("rule")
    >>> state = GUIState("Click the OK button", elements=(Element(1, "button", "OK"),))
    >>> [(v.task_relevance, v.coherence) for v in judge.judge(state, [], ["click(ref=1)", "noop()"])]
    [(1.0, 1.0), (0.0, 1.0)]
    >>> sorted(JUDGES)
    ['local_vlm', 'openai', 'rule']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from similar_rl.registry import Registry, resolve
from similar_rl.types import GUIState, Judge, JudgeVerdict

#: Judge name -> a factory callable or "module:ClassName" (imported on first use).
JUDGES = Registry(
    "judge",
    {
        "rule": "similar_rl.collect.judges.rule:RuleJudge",
        "openai": "similar_rl.collect.judges.openai_chat:OpenAIChatJudge",
        "local_vlm": "similar_rl.collect.judges.local_vlm:LocalVLMJudge",
    },
)


def register_judge(name: str, factory: str | Callable[..., Judge], *, overwrite: bool = False) -> None:
    """Register a judge factory (a callable or a ``"module:attr"`` path) under ``name``."""
    JUDGES.register(name, factory, overwrite=overwrite)


def make_judge(name: str, **kwargs: Any) -> Judge:
    """Create a judge by registered name (or ``"module:attr"`` path) with keyword arguments.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    if name not in JUDGES and ":" not in name:
        raise ValueError(
            f"unknown judge {name!r}; registered judges: {sorted(JUDGES)} (or pass 'module:attr')"
        )
    factory = JUDGES.get(name) if name in JUDGES else resolve(name)
    judge = factory(**kwargs)
    if not isinstance(judge, Judge):
        raise TypeError(
            f"judge factory {name!r} returned {type(judge).__name__}, which has no judge() method"
        )
    return judge


def failed_verdicts(n: int, error: str) -> list[JudgeVerdict]:
    """``n`` recorded failures with the same error message."""
    return [JudgeVerdict(None, None, error=error) for _ in range(n)]


class GroupedJudge:
    """What the model judges share: the candidates of a state are judged in one group (or one by one with
    ``per_candidate``). A subclass sets ``per_candidate`` and ``stats`` (with a ``"failures"`` count) and
    defines ``_judge_group``; its ``prepared`` argument is what :meth:`_prepare` made of the state (once)."""

    per_candidate: bool = False
    stats: dict[str, int]

    def judge(self, state: GUIState, history: Sequence[str], actions: Sequence[str]) -> list[JudgeVerdict]:
        """One verdict per candidate; recorded failures (values None, ``error`` set) when the model keeps failing."""
        if not actions:
            return []
        prepared = self._prepare(state)
        groups = [[a] for a in actions] if self.per_candidate else [list(actions)]
        return [v for group in groups for v in self._judge_group(state, history, group, prepared)]

    def _prepare(self, state: GUIState) -> Any:
        return None

    def _judge_group(
        self, state: GUIState, history: Sequence[str], actions: list[str], prepared: Any
    ) -> list[JudgeVerdict]:
        raise NotImplementedError

    def _failed(self, what: str, errors: list[str], n: int) -> list[JudgeVerdict]:
        """Count a failed group, log it (in the subclass's module) and return ``n`` recorded failures."""
        self.stats["failures"] += 1
        error = f"{what} failed after {len(errors)} attempt(s): " + " | ".join(errors)
        logging.getLogger(type(self).__module__).warning("%s", error[:500])
        return failed_verdicts(n, error)


__all__ = ["JUDGES", "GroupedJudge", "failed_verdicts", "make_judge", "register_judge"]
