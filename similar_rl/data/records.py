"""Step records and preference pairs: the rows of an SRM-style dataset folder.

A :class:`StepRecord` is one labelled child of an MCTS-P node: the state (instruction, history, observation
text, screenshot path), the candidate action and its five labels. Siblings share ``node_id``.
A :class:`PairRecord` compares two actions in one state (``type`` is a dimension key or ``total``) or two whole
trajectories (``type == "traj"``; ``chosen_steps``/``rejected_steps`` list the step records of each).
Screenshots are PNG files referenced by a path relative to the dataset folder.

Example:
    >>> rec = StepRecord(record_id="t/0/1", task_id="t", env_id="toy/click-button", seed=0, instruction="Click OK",
    ...                  step_idx=1, action="click(ref=2)", labels={"helpfulness": 0.5, "odds_of_success": 1.0,
    ...                  "efficiency": 0.0, "task_relevance": 1.0, "coherence": 1.0})
    >>> StepRecord.from_dict(rec.to_dict()) == rec
    True
    >>> StepRecord.from_dict({"record_id": "x"})
    Traceback (most recent call last):
    ...
    ValueError: step record 'x' misses field(s) ['action', 'env_id', 'instruction', 'labels', 'seed', 'step_idx', 'task_id']
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from similar_rl.dimensions import DIMENSIONS, PAIR_TYPES, check_label, total_score


@dataclass
class StepRecord:
    """One labelled candidate action (a child of an MCTS-P node)."""

    record_id: str
    task_id: str  # one task = one env id and seed; splits are by task or by family (env_id)
    env_id: str
    seed: int
    instruction: str
    step_idx: int  # 1-based index of the labelled step in its episode
    action: str
    labels: dict[str, float | None]  # the five dimensions; None = not labelled (e.g. a failed judge call)
    history: list[str] = field(default_factory=list)
    observation_text: str = ""
    screenshot: str | None = None  # PNG path relative to the dataset folder
    node_id: str = ""  # shared by siblings (same state)
    platform: str = "web"
    rollout_success: float | None = None  # mean task success of this child's rollouts
    rollout_length: float | None = None  # mean episode length of its successful rollouts
    judge_error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.labels) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"step record {self.record_id!r} has unknown label keys {sorted(unknown)}")
        for key in DIMENSIONS:
            value = self.labels.get(key)
            self.labels[key] = None if value is None else check_label(key, value)

    @property
    def total(self) -> float:
        return total_score(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> StepRecord:
        return _from_dict(cls, row, "step record", "record_id")


@dataclass
class PairRecord:
    """A preference pair: ``chosen`` is better than ``rejected`` on ``type``."""

    pair_id: str
    type: str  # a dimension key, "total" or "traj"
    task_id: str
    env_id: str
    instruction: str
    chosen: str  # action string (for traj: the actions joined by newlines)
    rejected: str
    step_idx: int = 0
    history: list[str] = field(default_factory=list)
    observation_text: str = ""
    screenshot: str | None = None
    chosen_record: str | None = None
    rejected_record: str | None = None
    chosen_steps: list[str] = field(default_factory=list)  # traj pairs: record ids of each trajectory's steps
    rejected_steps: list[str] = field(default_factory=list)
    margin: float = 0.0  # label difference (chosen - rejected), > 0

    def __post_init__(self) -> None:
        if self.type not in PAIR_TYPES:
            raise ValueError(
                f"pair {self.pair_id!r} has type {self.type!r}; expected one of {list(PAIR_TYPES)}"
            )
        if not math.isfinite(self.margin):
            raise ValueError(f"pair {self.pair_id!r} has a non-finite margin")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> PairRecord:
        return _from_dict(cls, row, "pair", "pair_id")


def _from_dict(cls: type, row: dict[str, Any], what: str, id_field: str) -> Any:
    if not isinstance(row, dict):
        raise TypeError(f"a {what} must be a dict, got {type(row).__name__}")
    ident = row.get(id_field)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = [name for name, f in fields.items() if f.default is dataclasses.MISSING is f.default_factory]
    missing = sorted(n for n in required if n not in row)
    if missing:
        raise ValueError(f"{what} {ident!r} misses field(s) {missing}")
    unknown = sorted(set(row) - set(fields))
    if unknown:
        raise ValueError(f"{what} {ident!r} has unknown field(s) {unknown}")
    for name, value in row.items():
        problem = _type_problem(str(fields[name].type), value)
        if problem:
            raise ValueError(f"{what} {ident!r}: field {name!r} must be {problem}, got {value!r:.80}")
    return cls(**row)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_problem(annotation: str, value: Any) -> str | None:
    """What a JSON value of a field annotated ``annotation`` should be, or None if it fits."""
    optional = annotation.endswith(" | None")
    if optional and value is None:
        return None
    annotation = annotation.removesuffix(" | None")
    checks: dict[str, tuple[str, Any]] = {
        "str": ("a string", lambda v: isinstance(v, str)),
        "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
        "float": ("a number", _is_number),
        "list[str]": (
            "a list of strings",
            lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        ),
        "dict[str, float | None]": (
            "a mapping of label names to numbers or null",
            lambda v: isinstance(v, dict) and all(i is None or _is_number(i) for i in v.values()),
        ),
        "dict[str, Any]": ("a mapping", lambda v: isinstance(v, dict)),
    }
    if annotation not in checks:
        return None
    text, ok = checks[annotation]
    return None if ok(value) else text + (" or null" if optional else "")
