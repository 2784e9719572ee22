"""Part 1 of the demo: a few episodes played through :class:`~similar_rl.wrappers.SimilarRewardWrapper`, every
step shown as a table row (action, env reward, the five scores and total) by :func:`step_rows`.

Example:
    >>> import numpy as np
    >>> from similar_rl.envs import make_env
    >>> from similar_rl.policies import make_policy
    >>> env, adapter = make_env("toy/click-button")
    >>> policy = make_policy("heuristic", adapter, temperature=0)
    >>> rows = list(step_rows(env, adapter, policy, "toy/click-button", 0, 5, np.random.default_rng(0)))
    >>> [(r.step, r.action, r.success, r.scores) for r in rows]
    [(1, 'click(ref=5)', True, None)]
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from similar_rl.demo.config import Echo
from similar_rl.dimensions import SCORE_KEYS
from similar_rl.envs.base import EnvFailure
from similar_rl.envs.miniwob import env_id_for
from similar_rl.harness import episodes
from similar_rl.types import GUIState

#: Column titles of the five scores and total in the printed table.
SHORT_NAMES = {
    "helpfulness": "help",
    "odds_of_success": "odds",
    "efficiency": "effic",
    "task_relevance": "relev",
    "coherence": "coher",
    "total": "total",
}


@dataclass
class StepRow:
    """One executed step of an episode. ``reward`` is the env's own reward (not the shaped one)."""

    env_id: str
    seed: int
    step: int  # 1-based
    instruction: str
    state: GUIState  # the state the action was chosen in
    history: tuple[str, ...]  # actions before this one
    action: str
    reward: float
    done: bool
    success: bool
    scores: dict[str, float] | None = None  # info["similar"] when the env is wrapped


def step_rows(
    env: Any, adapter: Any, policy: Any, env_id: str, seed: int, max_steps: int, rng: np.random.Generator
) -> Iterator[StepRow]:
    """Reset ``env`` with ``seed`` and yield one :class:`StepRow` per step until done or ``max_steps``.

    ``env`` may be wrapped in :class:`~similar_rl.wrappers.SimilarRewardWrapper`; success is judged on the env's
    own reward, so a shaped reward never turns a failure into a success.
    """

    def choose(state: Any, history: Any) -> str:
        return policy.propose(state, list(history), 1, rng)[0]

    for step in episodes.play(env, adapter, choose, seed, max_steps):
        outcome = step.outcome
        assert outcome is not None  # invalid="raise": every yielded step was executed
        yield StepRow(
            env_id=env_id,
            seed=seed,
            step=step.index,
            instruction=step.state.instruction,
            state=step.state,
            history=step.history,
            action=step.action,
            reward=step.env_reward,
            done=outcome.done,
            success=outcome.success,
            scores=step.scores,
        )


def action_label(row: StepRow, width: int = 46) -> str:
    """The action string and, for element actions, what the element says (cut to ``width`` characters)."""
    from similar_rl.model.backbones.action_text import describe_action

    phrase = describe_action(row.action, row.state.observation_text)
    text = f"{row.action}  {phrase.split(' ', 1)[1] if ' ' in phrase else ''}".rstrip()
    return text if len(text) <= width else text[: width - 1] + "…"


def table_header(width: int = 46) -> str:
    """The header of the step table (the score columns only when scores are shown)."""
    scores = " ".join(f"{SHORT_NAMES[k]:>6s}" for k in SCORE_KEYS)
    return f"  {'step':<7s} {'action':<{width}s} {'env rwd':>7s} {scores}"


def format_row(row: StepRow, width: int = 46) -> str:
    """One table row: ``step  N  action  env reward  five scores  total``.

    Example:
        >>> import numpy as np
        >>> state = GUIState(instruction="Click OK", screenshot=None, observation_text="[1] button \\"OK\\"")
        >>> row = StepRow("toy/x", 0, 1, "Click OK", state, (), "click(ref=1)", 1.0, True, True,
        ...               {k: 0.5 for k in SCORE_KEYS})
        >>> format_row(row, width=30)
        '  step  1 click(ref=1)  button "OK"       +1.000 +0.500 +0.500 +0.500 +0.500 +0.500 +0.500'
    """
    cells = " ".join(f"{row.scores[k]:+6.3f}" for k in SCORE_KEYS) if row.scores is not None else "(no model)"
    return f"  step {row.step:2d} {action_label(row, width):<{width}s} {row.reward:+7.3f} {cells}"


def play_scored_episodes(
    part: Any, scorer: Any, seed: int, echo: Echo, deadline: float | None = None
) -> dict[str, Any]:
    """Run part 1: ``part.episodes_per_family`` episodes of each family, printing every step.

    Args:
        part: an :class:`~similar_rl.demo.config.EpisodesPart`.
        scorer: a Scorer (or model) for :class:`SimilarRewardWrapper`; None plays unscored episodes.
        seed: the first episode's env seed and the policy's seed.
        echo: where the table lines go (the CLI prints them).
        deadline: ``time.perf_counter()`` value after which no new episode starts.

    Returns:
        ``{"episodes": [...], "failures": [...], "skipped": [...]}``; each episode is
        ``{"env_id", "seed", "instruction", "success", "steps": [{"step", "action", "env_reward", "scores"}]}``.
    """
    from similar_rl.envs import make_env
    from similar_rl.policies import make_policy
    from similar_rl.wrappers import SimilarRewardWrapper

    rng = np.random.default_rng(seed)
    episodes: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    skipped: list[str] = []
    for family in part.families:
        env_id = env_id_for(family)
        if deadline is not None and time.perf_counter() > deadline:
            skipped.append(env_id)
            echo(f"  (time budget of this part spent: skipping {env_id})")
            continue
        env = None
        try:
            started = time.perf_counter()
            env, adapter = make_env(env_id)
            if scorer is not None:
                env = SimilarRewardWrapper(env, scorer, adapter=adapter, coef=part.reward_coef)
            policy = make_policy(part.policy, adapter, **part.policy_kwargs)
            echo(f"\n== {env_id} (env ready in {time.perf_counter() - started:.1f}s)")
            for k in range(part.episodes_per_family):
                rows = step_rows(env, adapter, policy, env_id, seed + k, part.max_steps, rng)
                episodes.append(_one_episode(rows, env_id, seed + k, echo, len(episodes)))
        except EnvFailure as exc:
            echo(f"  ! {env_id}: the browser failed: {exc}\n    skipping {env_id}; the demo goes on")
            failures.append({"part": "episodes", "env_id": env_id, "error": str(exc)})
        finally:
            if env is not None:
                env.close()
    solved = sum(e["success"] for e in episodes)
    echo(f"\nsolved {solved}/{len(episodes)} episodes")
    return {"episodes": episodes, "failures": failures, "skipped": skipped}


def _one_episode(rows: Iterator[StepRow], env_id: str, seed: int, echo: Echo, index: int) -> dict[str, Any]:
    """Print and record the episode that ``rows`` plays (the ``index``-th of the part)."""
    steps: list[dict[str, Any]] = []
    instruction, success = "", False
    for row in rows:
        if row.step == 1:
            instruction = row.instruction
            echo(f"episode {index + 1} (seed {seed}): {row.instruction}")
            echo(table_header())
        echo(format_row(row))
        steps.append({"step": row.step, "action": row.action, "env_reward": row.reward, "scores": row.scores})
        success = row.success
    mean = None
    if steps and steps[0]["scores"] is not None:
        mean = {k: float(np.mean([s["scores"][k] for s in steps])) for k in SCORE_KEYS}
    tail = f", mean total {mean['total']:+.3f}" if mean else ""
    final = steps[-1]["env_reward"] if steps else 0.0
    echo(
        f"  -> {'success' if success else 'failure'} in {len(steps)} step(s) (env reward={final:+.3f}{tail})"
    )
    return {
        "env_id": env_id,
        "seed": seed,
        "instruction": instruction,
        "success": bool(success),
        "steps": steps,
        "mean_scores": mean,
    }


__all__ = ["StepRow", "format_row", "play_scored_episodes", "step_rows", "table_header"]
