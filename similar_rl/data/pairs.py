"""Preference pairs from labelled step records and from whole trajectories.

Step pairs (:func:`build_pairs`): siblings (records with the same ``node_id``) share instruction, history and
observation, so every two siblings whose labels on a dimension differ by at least ``min_margin`` give one pair
of that type, the higher one chosen; a ``total`` pair is added when their weighted totals differ. Every
unordered sibling pair is considered once whatever the input order (no pair is lost because the better record
came second), and raw label values are compared, never bins (two negative helpfulness values still make a
pair). Pair ids are deterministic (:func:`pair_id`).

Trajectory pairs (:func:`build_traj_pairs`): two trajectories of one task whose mean per-step score differs
give one ``traj`` pair.

Example:
    >>> from similar_rl.data.records import StepRecord
    >>> def rec(i, h):
    ...     labels = {"helpfulness": h, "odds_of_success": 0.5, "efficiency": 0.0, "task_relevance": 1.0,
    ...               "coherence": 1.0}
    ...     return StepRecord(record_id=f"r{i}", task_id="t", env_id="toy/a", seed=0, instruction="Go",
    ...                       step_idx=1, action=f"click(ref={i})", labels=labels, node_id="n0")
    >>> pairs = build_pairs([rec(1, -0.5), rec(2, -0.2)])
    >>> [(p.type, p.chosen, p.rejected) for p in pairs]
    [('helpfulness', 'click(ref=2)', 'click(ref=1)'), ('total', 'click(ref=2)', 'click(ref=1)')]
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from similar_rl.data.records import PairRecord, StepRecord
from similar_rl.dimensions import DIMENSIONS, PAIR_TYPES, total_score, validate_weights

#: Unit weights: a trajectory's score is its mean per-step plain sum of the five labels.
UNIT_WEIGHTS: dict[str, float] = dict.fromkeys(DIMENSIONS, 1.0)


def pair_id(chosen_id: str, rejected_id: str, pair_type: str) -> str:
    """Deterministic id of a pair: a hash of the two record ids and the type.

    Example:
        >>> pair_id("a", "b", "total") == pair_id("a", "b", "total") != pair_id("b", "a", "total")
        True
    """
    h = hashlib.blake2b(digest_size=12)
    for part in (pair_type, chosen_id, rejected_id):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return f"{pair_type}-{h.hexdigest()}"


def _margins(min_margin: float | Mapping[str, float]) -> dict[str, float]:
    if isinstance(min_margin, Mapping):
        unknown = set(min_margin) - set(PAIR_TYPES)
        if unknown:
            raise ValueError(
                f"min_margin has unknown pair type(s) {sorted(unknown)}; expected {list(PAIR_TYPES)}"
            )
        margins = {t: float(min_margin.get(t, 1e-9)) for t in PAIR_TYPES}
    else:
        margins = dict.fromkeys(PAIR_TYPES, float(min_margin))
    for t, m in margins.items():
        if not (math.isfinite(m) and m > 0):
            raise ValueError(f"min_margin for {t!r} must be a positive number, got {m}")
    return margins


def _step_pair(better: StepRecord, worse: StepRecord, pair_type: str, margin: float) -> PairRecord:
    return PairRecord(
        pair_id=pair_id(better.record_id, worse.record_id, pair_type),
        type=pair_type,
        task_id=better.task_id,
        env_id=better.env_id,
        instruction=better.instruction,
        chosen=better.action,
        rejected=worse.action,
        step_idx=better.step_idx,
        history=list(better.history),
        observation_text=better.observation_text,
        screenshot=better.screenshot,
        chosen_record=better.record_id,
        rejected_record=worse.record_id,
        margin=margin,
    )


def build_pairs(
    step_records: Iterable[StepRecord],
    min_margin: float | Mapping[str, float] = 1e-9,
    *,
    dimensions: Sequence[str] = DIMENSIONS,
    include_total: bool = True,
    weights: Mapping[str, float] | None = None,
) -> list[PairRecord]:
    """Per-dimension and ``total`` preference pairs between siblings (records sharing ``node_id``).

    Args:
        step_records: labelled records; records with an empty ``node_id`` are ignored.
        min_margin: smallest label difference that makes a pair (one number, or per pair type).
        dimensions: the dimensions to pair on.
        include_total: also make ``total`` pairs (weighted total, see :func:`similar_rl.dimensions.total_score`).
        weights: weights of ``total`` (default the reference weighting).

    A label that is None (e.g. a failed judge call) makes no pair on that dimension, and a record with any
    None label makes no ``total`` pair. Siblings with the same action (after the collector's deduplication
    there should be none) make no pairs. Output order is deterministic: by node, then sibling order, then type.

    Raises:
        ValueError: siblings disagree on task, instruction or history (they are not one state).
    """
    margins = _margins(min_margin)
    unknown = set(dimensions) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"unknown dimension(s) {sorted(unknown)}; expected keys from {DIMENSIONS}")
    if weights is not None:
        weights = validate_weights(weights)
    nodes: dict[str, list[StepRecord]] = defaultdict(list)
    for rec in step_records:
        if rec.node_id:
            nodes[rec.node_id].append(rec)
    pairs: list[PairRecord] = []
    for node_id, siblings in nodes.items():
        _check_siblings(node_id, siblings)
        for a, b in itertools.combinations(siblings, 2):
            if a.action == b.action:
                continue
            values = [(dim, a.labels.get(dim), b.labels.get(dim)) for dim in dimensions]
            if include_total and all(r.labels.get(d) is not None for r in (a, b) for d in DIMENSIONS):
                values.append(("total", total_score(a.labels, weights), total_score(b.labels, weights)))
            for ptype, va, vb in values:
                if va is None or vb is None or abs(va - vb) < margins[ptype]:
                    continue
                better, worse = (a, b) if va > vb else (b, a)
                pairs.append(_step_pair(better, worse, ptype, abs(va - vb)))
    return pairs


def _check_siblings(node_id: str, siblings: list[StepRecord]) -> None:
    first = siblings[0]
    for rec in siblings[1:]:
        for name in ("task_id", "instruction", "history", "step_idx"):
            if getattr(rec, name) != getattr(first, name):
                raise ValueError(
                    f"records {first.record_id!r} and {rec.record_id!r} share node_id {node_id!r} but differ in "
                    f"{name}; siblings must be candidates in one state"
                )


@dataclass
class Trajectory:
    """One episode of a task as labelled steps, in order: their record ids and actions, the mean per-step
    ``score`` (:func:`trajectory_score`), the first ``screenshot`` (shown with a ``traj`` pair) and
    ``success`` (None if unknown)."""

    task_id: str
    env_id: str
    instruction: str
    step_ids: list[str]
    actions: list[str]
    score: float
    screenshot: str | None = None
    success: bool | None = None
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.step_ids) != len(self.actions):
            raise ValueError(
                f"trajectory of task {self.task_id!r} has {len(self.step_ids)} step ids but {len(self.actions)} actions"
            )
        if not self.actions:
            raise ValueError(f"trajectory of task {self.task_id!r} is empty")
        if not math.isfinite(self.score):
            raise ValueError(f"trajectory of task {self.task_id!r} has a non-finite score {self.score}")

    @classmethod
    def from_steps(
        cls,
        steps: Sequence[StepRecord],
        weights: Mapping[str, float] | None = None,
        success: bool | None = None,
    ) -> Trajectory:
        """The trajectory made of ``steps`` (one per step, in order), scored by :func:`trajectory_score`."""
        if not steps:
            raise ValueError("a trajectory needs at least one step")
        first = steps[0]
        return cls(
            task_id=first.task_id,
            env_id=first.env_id,
            instruction=first.instruction,
            step_ids=[s.record_id for s in steps],
            actions=[s.action for s in steps],
            score=trajectory_score(steps, weights),
            screenshot=first.screenshot,
            success=success,
        )


def trajectory_score(steps: Sequence[StepRecord], weights: Mapping[str, float] | None = None) -> float:
    """Mean over steps of the weighted sum of labels (default: plain sum, :data:`UNIT_WEIGHTS`); None counts 0."""
    if not steps:
        raise ValueError("trajectory_score needs at least one step")
    w = UNIT_WEIGHTS if weights is None else validate_weights(weights)
    return sum(total_score(s.labels, w) for s in steps) / len(steps)


def build_traj_pairs(trajectories: Iterable[Trajectory], min_margin: float = 1e-9) -> list[PairRecord]:
    """``traj`` pairs between trajectories of the same task whose scores differ by at least ``min_margin``.

    ``chosen``/``rejected`` hold the actions joined by newlines; ``chosen_steps``/``rejected_steps`` the record
    ids. Identical action sequences make no pair.
    """
    if not (math.isfinite(min_margin) and min_margin > 0):
        raise ValueError(f"min_margin must be a positive number, got {min_margin}")
    by_task: dict[str, list[Trajectory]] = defaultdict(list)
    for traj in trajectories:
        by_task[traj.task_id].append(traj)
    pairs = []
    for task_id, trajs in by_task.items():
        for a, b in itertools.combinations(trajs, 2):
            if a.actions == b.actions or abs(a.score - b.score) < min_margin:
                continue
            better, worse = (a, b) if a.score > b.score else (b, a)
            pairs.append(
                PairRecord(
                    pair_id=pair_id("|".join(better.step_ids), "|".join(worse.step_ids), "traj"),
                    type="traj",
                    task_id=task_id,
                    env_id=better.env_id,
                    instruction=better.instruction,
                    chosen="\n".join(better.actions),
                    rejected="\n".join(worse.actions),
                    step_idx=0,
                    screenshot=better.screenshot,
                    chosen_steps=list(better.step_ids),
                    rejected_steps=list(worse.step_ids),
                    margin=abs(a.score - b.score),
                )
            )
    return pairs
