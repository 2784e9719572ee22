"""Rollout labels of MCTS-P children (docs/method.md section 2): pure functions, no env.

Notation: a node at depth ``t`` (0-based) has children; the labelled step is ``i = t + 1``; each child has one or
more rollouts, each a ``(success, length)`` pair where ``length`` is the whole episode length counted from the
initial state (prefix + the child's step + the continuation).

* ``L0`` (:func:`calibrate_l0`): mean length of the successful calibration episodes; ``None`` prunes the task.
* ``OS_j`` (:func:`odds_of_success`): fraction of child ``j``'s rollouts that succeed.
* ``R_j``: remaining steps after the step, ``l - i``, averaged over the child's successful rollouts.
* ``R_prev``: expected remaining steps before the step, ``l - t`` averaged over the successful children
  (each child's mean counts once). So a child as long as its successful siblings' mean gets ``E = 1/L0``.
* ``E_j = (R_prev - R_j) / L0`` for a child with at least one success. **Failed-child rule**: a child with no
  successful rollout keeps ``R_j = R_prev`` (no progress) and also wasted its step, so it gets
  ``E_j = min(-1/L0, min E of its successful siblings)``: strictly negative and never above a successful sibling.
  When no child of the node succeeds, every child gets ``-1/L0``. E is clipped to ``[-1, 1]``.
* ``H_j = (2*OS_j - 1) * (1 - AC) / max(L0 - t, 1)``; with one rollout ``2*OS_j - 1`` is the sign
  (+1 success, -1 failure); with k rollouts it is the mean sign.
* ``AC``: the sum of H along the path from the root to the node, clipped to ``[0, 1]`` (:func:`accumulated`).
  It belongs to the path (a search node), never to a child slot.

Example (L0 = 2; at the root one child solves the task in 2 steps, one in 4, one fails):
    >>> labels = label_children([[(True, 2)], [(True, 4)], [(False, 3)]], depth=0, l0=2.0, ac_sum=0.0)
    >>> [(c.odds_of_success, c.efficiency, c.helpfulness) for c in labels]
    [(1.0, 1.0, 0.5), (1.0, 0.0, 0.5), (0.0, -0.5, -0.5)]
    >>> accumulated(0.5 + 0.5 + 0.5)
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: A rollout's (task success, total episode length from the initial state).
RolloutOutcome = tuple[bool, int]


@dataclass(frozen=True)
class ChildLabels:
    """The rollout labels of one child, and the quantities they came from."""

    odds_of_success: float
    efficiency: float
    helpfulness: float
    remaining: float | None  # R_j; None when the child never succeeded (it keeps R_prev for E)
    mean_length: float | None  # mean episode length of its successful rollouts

    def labels(self, task_relevance: float | None, coherence: float | None) -> dict[str, float | None]:
        """The five labels of the child: these rollout labels with the judge's two."""
        return {
            "helpfulness": self.helpfulness,
            "odds_of_success": self.odds_of_success,
            "efficiency": self.efficiency,
            "task_relevance": task_relevance,
            "coherence": coherence,
        }


def calibrate_l0(outcomes: Sequence[RolloutOutcome]) -> float | None:
    """L0: the mean length of the successful calibration episodes, or None if none succeeded (prune the task).

    Example:
        >>> calibrate_l0([(True, 3), (False, 20), (True, 5)])
        4.0
        >>> calibrate_l0([(False, 2)]) is None
        True
    """
    lengths = [length for ok, length in outcomes if ok]
    return float(sum(lengths) / len(lengths)) if lengths else None


def odds_of_success(outcomes: Sequence[RolloutOutcome]) -> float:
    """Fraction of successful rollouts.

    Example:
        >>> odds_of_success([(True, 3), (False, 5)])
        0.5
    """
    if not outcomes:
        raise ValueError("odds_of_success needs at least one rollout")
    return sum(1 for ok, _ in outcomes if ok) / len(outcomes)


def accumulated(ac_sum: float) -> float:
    """AC: the path's summed helpfulness clipped to [0, 1].

    Example:
        >>> accumulated(-0.3), accumulated(0.4), accumulated(1.7)
        (0.0, 0.4, 1.0)
    """
    return min(max(float(ac_sum), 0.0), 1.0)


def helpfulness(os_j: float, ac_sum: float, depth: int, l0: float) -> float:
    """H = (2*OS - 1) * (1 - AC) / max(L0 - t, 1), AC = accumulated(ac_sum).

    Example:
        >>> helpfulness(1.0, 0.5, depth=1, l0=2.0)
        0.5
        >>> helpfulness(0.0, 0.0, depth=0, l0=4.0)
        -0.25
    """
    _check_l0(l0)
    return (2.0 * os_j - 1.0) * (1.0 - accumulated(ac_sum)) / max(l0 - depth, 1.0)


def label_children(
    children: Sequence[Sequence[RolloutOutcome]], depth: int, l0: float, ac_sum: float
) -> list[ChildLabels]:
    """Label all children of one node (same depth, same path, so the same AC), in the module's notation.

    ``children`` holds each child's rollouts as (success, episode length from the initial state); ``depth``
    is t (0 at the root); ``ac_sum`` is the sum of H along the path to the node (clipped inside).
    """
    _check_l0(l0)
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    step = depth + 1
    means: list[float | None] = []
    oss: list[float] = []
    for j, rollouts in enumerate(children):
        if not rollouts:
            raise ValueError(f"child {j} has no rollouts")
        for _ok, length in rollouts:
            if length < step:
                raise ValueError(
                    f"child {j}: a rollout of length {length} is shorter than the labelled step {step}"
                )
        oss.append(odds_of_success(rollouts))
        ok_lengths = [length for ok, length in rollouts if ok]
        means.append(sum(ok_lengths) / len(ok_lengths) if ok_lengths else None)
    successful = [m for m in means if m is not None]
    r_prev = sum(m - depth for m in successful) / len(successful) if successful else None
    effs: list[float | None] = [
        None if m is None or r_prev is None else (r_prev - (m - step)) / l0 for m in means
    ]
    worst = min([-1.0 / l0, *[e for e in effs if e is not None]])
    return [
        ChildLabels(
            odds_of_success=os_j,
            efficiency=min(max(float(worst if e is None else e), -1.0), 1.0),
            helpfulness=helpfulness(os_j, ac_sum, depth, l0),
            remaining=None if m is None else m - step,
            mean_length=m,
        )
        for os_j, e, m in zip(oss, effs, means, strict=True)
    ]


def best_child(keys: Sequence[tuple[float, ...]]) -> int:
    """Index of the best child by its key tuple (higher is better; the earliest wins ties).

    Example:
        >>> best_child([(0.0, -0.5), (1.0, 0.5), (1.0, 0.5)])
        1
    """
    if not keys:
        raise ValueError("best_child needs at least one child")
    return max(range(len(keys)), key=lambda j: (keys[j], -j))


def _check_l0(l0: float) -> None:
    if not (math.isfinite(l0) and l0 > 0):
        raise ValueError(f"L0 must be a positive finite number, got {l0}")
