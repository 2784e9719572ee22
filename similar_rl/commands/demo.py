"""``similar-rl demo``: run a policy for a few MiniWoB++ episodes and print every step.

Each step prints the action and the env reward; each episode starts with its instruction. The episode loop is
:func:`run_episode`, a generator of :class:`StepRow` (the state before the action is kept in the row), so a
caller can add columns, e.g. reward-model scores of ``row.state.step_input(row.action, row.history)``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from similar_rl.types import GUIState

DEFAULT_FAMILIES = ("click-button", "enter-text", "login-user", "click-checkboxes")


@dataclass
class StepRow:
    """One executed step of an episode."""

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


def run_episode(
    env: Any, adapter: Any, policy: Any, env_id: str, seed: int, max_steps: int, rng: np.random.Generator
) -> Iterator[StepRow]:
    """Reset ``env`` with ``seed`` and yield one :class:`StepRow` per step until done or ``max_steps``."""
    state, _ = adapter.reset(env, seed=seed)
    history: list[str] = []
    for step in range(1, max_steps + 1):
        action = policy.propose(state, history, 1, rng)[0]
        outcome = adapter.step(env, action)
        yield StepRow(
            env_id=env_id,
            seed=seed,
            step=step,
            instruction=state.instruction,
            state=state,
            history=tuple(history),
            action=action,
            reward=outcome.reward,
            done=outcome.done,
            success=outcome.success,
        )
        if outcome.done:
            return
        history.append(action)
        state = outcome.state


def env_id_for(family: str) -> str:
    """``"click-button"`` -> ``"miniwob/click-button-v1"``; full ids (with a ``/``) pass through."""
    return family if "/" in family else f"miniwob/{family}-v1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--families",
        default=",".join(DEFAULT_FAMILIES),
        help="comma-separated MiniWoB++ task families (or full env ids such as toy/login-form); "
        f"default {','.join(DEFAULT_FAMILIES)}",
    )
    parser.add_argument("--episodes", type=int, default=2, help="episodes per family (default 2)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first episode and of the policy (default 0)"
    )
    parser.add_argument("--max-steps", type=int, default=10, help="step budget per episode (default 10)")
    parser.add_argument("--policy", default="heuristic", help="policy name: heuristic (default) or random")


def run(args: argparse.Namespace) -> int:
    from similar_rl.envs import make_env
    from similar_rl.policies import make_policy

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    if not families:
        raise SystemExit("--families is empty; give e.g. --families click-button,enter-text")
    if args.episodes < 1 or args.max_steps < 1:
        raise SystemExit("--episodes and --max-steps must be at least 1")
    rng = np.random.default_rng(args.seed)
    solved = total = 0
    print(
        f"similar-rl demo: policy={args.policy} seed={args.seed} episodes/family={args.episodes}", flush=True
    )
    for family in families:
        env_id = env_id_for(family)
        started = time.perf_counter()
        env, adapter = make_env(env_id)
        print(f"\n== {env_id} (browser ready in {time.perf_counter() - started:.1f}s)", flush=True)
        policy = make_policy(args.policy, adapter)
        try:
            for episode in range(args.episodes):
                seed = args.seed + episode
                row = None
                for row in run_episode(env, adapter, policy, env_id, seed, args.max_steps, rng):
                    if row.step == 1:
                        print(f"episode {episode + 1} (seed {seed}): {row.instruction}")
                    print(f"  step {row.step:2d}  {row.action:<45s} reward={row.reward:+.3f}", flush=True)
                success = bool(row and row.success)
                solved += success
                total += 1
                print(f"  -> {'success' if success else 'failure'}")
        finally:
            env.close()
    print(f"\nsolved {solved}/{total} episodes")
    return 0
