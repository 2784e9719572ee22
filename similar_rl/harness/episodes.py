"""The one episode loop: reset with a seed, choose, step, until the env ends the episode or the step budget is spent.

:func:`play` is a generator: it yields one :class:`Step` per action and returns an :class:`Episode` summary
(:func:`run` returns just the summary). An action the env cannot execute is up to the caller: ``"raise"``,
``"skip"`` (a spent step, the state stays) or ``"noop"`` (``noop()`` runs instead). The env's own reward is
read from the wrapper's info key (:mod:`similar_rl.types`): shaping never fakes a success.

Example:
    >>> import numpy as np
    >>> from similar_rl.envs import make_env
    >>> from similar_rl.policies import make_policy
    >>> env, adapter = make_env("toy/click-button")
    >>> policy, rng = make_policy("heuristic", adapter, temperature=0), np.random.default_rng(0)
    >>> episode = run(env, adapter, lambda state, history: policy.propose(state, history, 1, rng)[0], seed=0)
    >>> episode.success, episode.actions
    (True, ['click(ref=5)'])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from similar_rl.envs.actions import NOOP, ActionParseError
from similar_rl.envs.base import BaseAdapter, InvalidActionError, StepOutcome
from similar_rl.types import INFO_ENV_REWARD, INFO_SCORES, GUIState

#: What :func:`play` does with an action the env cannot execute.
INVALID_RULES = ("raise", "skip", "noop")

#: ``choose(state, history) -> action``; None counts as an invalid action.
Chooser = Callable[[GUIState, Sequence[str]], "str | None"]


@dataclass
class Step:
    """One action of an episode: the state it was taken in, the actions before it, and what came of it."""

    index: int  # 1-based
    state: GUIState
    history: tuple[str, ...]
    action: str
    outcome: StepOutcome | None  # None: the action was not executable and was skipped
    invalid: bool = False

    @property
    def env_reward(self) -> float:
        """The env's own reward (a wrapper's shaped reward is in ``outcome.reward``)."""
        if self.outcome is None:
            return 0.0
        return float(self.outcome.info.get(INFO_ENV_REWARD, self.outcome.reward))

    @property
    def scores(self) -> dict[str, float] | None:
        """The wrapper's Similar scores of the step, if the env is wrapped."""
        found = None if self.outcome is None else self.outcome.info.get(INFO_SCORES)
        return None if found is None else dict(found)


@dataclass
class Episode:
    """How an episode went."""

    seed: int | None
    success: bool = False
    actions: list[str] = field(default_factory=list)
    reward: float = 0.0  # sum of the env's own rewards
    invalid_actions: int = 0
    ended: str = "budget"  # "done" (the env ended it) or "budget"
    wall_time: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.actions)


def play(
    env: Any,
    adapter: BaseAdapter,
    choose: Chooser,
    seed: int | None,
    max_steps: int,
    *,
    invalid: str = "raise",
) -> Generator[Step, None, Episode]:
    """Play one episode from ``reset(seed)``; yield each :class:`Step`, return the :class:`Episode`."""
    if invalid not in INVALID_RULES:
        raise ValueError(f"invalid must be one of {INVALID_RULES}, got {invalid!r}")
    start = time.perf_counter()
    episode = Episode(seed=seed)
    state, _ = adapter.reset(env, seed=seed)
    for index in range(1, max_steps + 1):
        history = tuple(episode.actions)
        action = choose(state, history)
        bad = action is None
        outcome: StepOutcome | None = None
        if not bad:
            try:
                outcome = adapter.step(env, action)
            except (ActionParseError, InvalidActionError):
                if invalid == "raise":
                    raise
                bad = True
        if bad:
            episode.invalid_actions += 1
            if invalid == "noop":
                outcome = adapter.step(env, NOOP)
            elif invalid == "raise":
                raise ValueError("the chooser returned no action")
        action = NOOP if action is None else action
        episode.actions.append(action)
        step = Step(index, state, history, action, outcome, invalid=bad)
        episode.reward += step.env_reward
        yield step
        if outcome is not None and outcome.done:
            episode.success, episode.ended = bool(outcome.success), "done"
            break
        if outcome is not None:
            state = outcome.state  # type: ignore[assignment]
    episode.wall_time = time.perf_counter() - start
    return episode


def run(
    env: Any, adapter: BaseAdapter, choose: Chooser, seed: int | None, max_steps: int = 20, **kw: Any
) -> Episode:
    """Play one episode to its end and return the summary (see :func:`play`)."""
    steps = play(env, adapter, choose, seed, max_steps, **kw)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value
