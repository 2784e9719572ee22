"""A small labelled dataset from the toy env, for smoke tests, docs and training benchmarks without a browser.

For each task (toy env id, seed) it walks the env's known solution. At each depth t it takes up to
``n_children`` candidate actions (the solution's next action plus adapter candidates), rolls every candidate
out along the rest of the solution and labels it with the rollout labels of :mod:`similar_rl.collect.labels`
(OS, E, H). Task relevance is 0 for ``noop``/``press`` and for clicks on
non-clickable elements; coherence is 0 for an exact repeat of the previous action. Pairs: every two siblings
whose label differs on a dimension, a ``total`` pair when their totals differ, and one ``traj`` pair per task
(the solution path against the path of first wrong siblings).

This is a stand-in for MCTS-P data (``similar-rl collect``), not a replacement: the rollout policy is an oracle.

Example:
    >>> import tempfile
    >>> folder = build_toy_dataset(tempfile.mkdtemp(), ["toy/click-button"], seeds=[0, 1], n_children=3)
    >>> from similar_rl.data.dataset import load_dataset_folder
    >>> data = load_dataset_folder(folder)
    >>> len(data.steps) > 0 and len(data.pairs) > 0
    True
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from similar_rl.collect.labels import accumulated, label_children
from similar_rl.data.dataset import DatasetWriter
from similar_rl.data.pairs import Trajectory, build_pairs, build_traj_pairs
from similar_rl.data.records import PairRecord, StepRecord
from similar_rl.dimensions import TOTAL_WEIGHTS
from similar_rl.envs import make_env
from similar_rl.envs.actions import try_parse
from similar_rl.envs.base import InvalidActionError

logger = logging.getLogger(__name__)


def _rollout(adapter, env, seed: int, prefix: list[str], action: str, rest: list[str], max_steps: int):
    """(success, episode length) of prefix + action + rest, stopping when the episode ends."""
    adapter.rebuild(env, seed, prefix)
    length = len(prefix)
    for a in [action, *rest]:
        try:
            outcome = adapter.step(env, a)
        except InvalidActionError:  # the rest of the solution no longer fits the page: a failed rollout
            return False, length + 1
        length += 1
        if outcome.done or length >= max_steps:
            return bool(outcome.success), length
    return False, length


def _judge(state, action: str, previous: str | None) -> tuple[float, float]:
    parsed = try_parse(action)
    if parsed is None:
        return 0.0, 0.0
    if parsed.kind == "click":
        element = state.element(parsed.ref)
        relevant = element is not None and element.clickable
    else:
        relevant = parsed.kind not in ("noop", "press")
    return float(relevant), 0.0 if action == previous else 1.0


def build_toy_dataset(
    folder: str | os.PathLike[str],
    env_ids: Sequence[str] = ("toy/click-button", "toy/login-form", "toy/open-tab", "toy/checkboxes"),
    seeds: Sequence[int] = (0, 1, 2),
    n_children: int = 5,
    max_steps: int = 12,
    rng_seed: int = 0,
) -> Path:
    """Write a labelled toy dataset folder (see the module docstring) and return its path."""
    rng = np.random.default_rng(rng_seed)
    folder = Path(folder)
    with DatasetWriter(folder, config={"builder": "build_toy_dataset", "n_children": n_children}) as writer:
        for env_id in env_ids:
            env, adapter = make_env(env_id)
            for seed in seeds:
                task_id = f"{env_id}/{seed}"
                if writer.is_done(task_id):
                    continue
                steps, pairs = _task_records(writer, adapter, env, env_id, seed, n_children, max_steps, rng)
                writer.commit_task(task_id, steps, pairs)
            env.close()
    return folder


def _task_records(writer, adapter, env, env_id, seed, n_children, max_steps, rng):
    task_id = f"{env_id}/{seed}"
    adapter.reset(env, seed)
    solution = env.unwrapped.solution
    l0 = float(len(solution))
    steps: list[StepRecord] = []
    pairs: list[PairRecord] = []
    ac_sum = 0.0
    good_path, bad_path = [], []
    for depth, good in enumerate(solution):
        state, _ = adapter.rebuild(env, seed, solution[:depth])
        others = [a for a in adapter.candidates(state) if a != good] + ["noop()"]
        if depth > 0:
            others.append(solution[depth - 1])
        others = list(dict.fromkeys(others))
        rng.shuffle(others)
        actions = [good, *others[: n_children - 1]]
        rng.shuffle(actions)
        outcomes = []
        for a in actions:
            rest = solution[depth + 1 :] if a == good else solution[depth:]
            outcomes.append([_rollout(adapter, env, seed, solution[:depth], a, rest, max_steps)])
        labels = label_children(outcomes, depth, l0, ac_sum)
        screenshot = writer.save_screenshot(state.screenshot) if state.screenshot is not None else None
        node_id = f"{task_id}/{depth}"
        previous = solution[depth - 1] if depth > 0 else None
        records = [
            StepRecord(
                record_id=f"{node_id}/{j}",
                task_id=task_id,
                env_id=env_id,
                seed=seed,
                instruction=state.instruction,
                step_idx=depth + 1,
                action=a,
                labels=lab.labels(*_judge(state, a, previous)),
                history=list(solution[:depth]),
                observation_text=state.observation_text,
                screenshot=screenshot,
                node_id=node_id,
                platform="toy",
                rollout_success=lab.odds_of_success,
            )
            for j, (a, lab) in enumerate(zip(actions, labels, strict=True))
        ]
        steps.extend(records)
        pairs.extend(build_pairs(records))
        good_path.append(max(records, key=lambda r: r.total))
        bad_path.append(min(records, key=lambda r: r.total))
        ac_sum += next(lab.helpfulness for a, lab in zip(actions, labels, strict=True) if a == good)
        ac_sum = accumulated(ac_sum) if ac_sum > 1 else ac_sum
    good_traj, bad_traj = (Trajectory.from_steps(p, weights=TOTAL_WEIGHTS) for p in (good_path, bad_path))
    if good_traj.score > bad_traj.score:
        pairs.extend(build_traj_pairs([good_traj, bad_traj]))
    logger.debug(
        "%s: %d steps, %d pairs (total of best path %.2f)", task_id, len(steps), len(pairs), good_traj.score
    )
    return steps, pairs
