"""The five Similar dimensions: keys, display names, reference aliases, label ranges and `total` weights.

The keys in :data:`DIMENSIONS` are the names used everywhere in this package (records, scores, reward
functions, logs). The authors' reference data uses short aliases (IP, E, TC, TR, C); :func:`from_alias`
and :func:`to_alias` convert.

Example:
    >>> DIMENSIONS[0]
    'helpfulness'
    >>> DIMENSION_INFO["odds_of_success"].alias
    'IP'
    >>> total_score({"helpfulness": 0.5, "odds_of_success": 1.0, "efficiency": 0.2,
    ...              "task_relevance": 1, "coherence": 1})
    9.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

DIMENSIONS: tuple[str, ...] = ("helpfulness", "odds_of_success", "efficiency", "task_relevance", "coherence")
#: Keys of a full score: the five dimensions then ``total``.
SCORE_KEYS: tuple[str, ...] = (*DIMENSIONS, "total")
#: Preference-pair types: one per dimension, ``total`` (weighted step score) and ``traj`` (whole trajectories).
PAIR_TYPES: tuple[str, ...] = (*DIMENSIONS, "total", "traj")


@dataclass(frozen=True)
class Dimension:
    """Metadata of one dimension."""

    key: str
    display_name: str
    alias: str
    label_range: tuple[float, float]
    source: str  # "rollout" (computed from MCTS-P rollouts) or "judge" (task relevance / coherence judge)
    total_weight: float
    binary: bool
    description: str


_DESCRIPTIONS = (  # in DIMENSIONS order
    "How much the step moves the task toward completion: positive if correct, negative if wrong.",
    "Probability that the task is completed from the state after the step.",
    "How much the step shortens the expected remaining path, relative to the task length.",
    "Whether the action relates to the instruction at all (1) or is clearly meaningless (0).",
    "Whether the step follows sensibly from the previous one (the first step counts as coherent).",
)

_ROWS = (  # key, display name, alias, label range, source, total weight
    ("helpfulness", "Helpfulness", "TC", (-1.0, 1.0), "rollout", 3.0),
    ("odds_of_success", "Odds of Success", "IP", (0.0, 1.0), "rollout", 5.0),
    ("efficiency", "Efficiency", "E", (-1.0, 1.0), "rollout", 5.0),
    ("task_relevance", "Task Relevance", "TR", (0.0, 1.0), "judge", 1.0),
    ("coherence", "Coherence", "C", (0.0, 1.0), "judge", 1.0),
)
DIMENSION_INFO: dict[str, Dimension] = {
    row[0]: Dimension(*row, row[4] == "judge", description)  # the judge's dimensions are the binary ones
    for row, description in zip(_ROWS, _DESCRIPTIONS, strict=True)
}

#: Default weights of ``total = 5*OS + 5*E + 3*H + TR + C`` (the reference data's weighting).
TOTAL_WEIGHTS: dict[str, float] = {k: DIMENSION_INFO[k].total_weight for k in DIMENSIONS}

_ALIAS_TO_KEY: dict[str, str] = {info.alias: key for key, info in DIMENSION_INFO.items()}
_ALIAS_TO_KEY.update({"total": "total", "traj": "traj"})


def from_alias(name: str) -> str:
    """Map a reference alias (IP, E, TC, TR, C, total, traj) or a key to the key used here.

    Example:
        >>> from_alias("TC"), from_alias("efficiency"), from_alias("total")
        ('helpfulness', 'efficiency', 'total')
    """
    if name in _ALIAS_TO_KEY:
        return _ALIAS_TO_KEY[name]
    if name in PAIR_TYPES:
        return name
    raise ValueError(
        f"unknown dimension or pair type {name!r}; expected one of {sorted(_ALIAS_TO_KEY)} or {list(PAIR_TYPES)}"
    )


def to_alias(key: str) -> str:
    """Map a key (or ``total``/``traj``) to the reference alias.

    Example:
        >>> to_alias("odds_of_success")
        'IP'
    """
    if key in DIMENSION_INFO:
        return DIMENSION_INFO[key].alias
    if key in ("total", "traj"):
        return key
    raise ValueError(f"unknown dimension {key!r}; expected one of {list(PAIR_TYPES)}")


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check a weight mapping: known dimension keys, finite numbers. Missing dimensions get weight 0.

    Example:
        >>> validate_weights({"helpfulness": 1.0})["coherence"]
        0.0
    """
    unknown = set(weights) - set(DIMENSIONS)
    if unknown:
        raise ValueError(
            f"unknown dimension(s) in weights: {sorted(unknown)}; expected keys from {DIMENSIONS}"
        )
    out = {}
    for key in DIMENSIONS:
        value = float(weights.get(key, 0.0))
        if not math.isfinite(value):
            raise ValueError(f"weight for {key!r} must be finite, got {value}")
        out[key] = value
    return out


def total_score(labels: Mapping[str, float | None], weights: Mapping[str, float] | None = None) -> float:
    """Weighted sum of the dimension values (default weights :data:`TOTAL_WEIGHTS`); missing labels count 0."""
    w = TOTAL_WEIGHTS if weights is None else validate_weights(weights)
    return float(sum(w[k] * float(labels[k]) for k in DIMENSIONS if labels.get(k) is not None))


def check_label(key: str, value: float, tolerance: float = 1e-6) -> float:
    """Return ``value`` as float if it lies in the dimension's label range, else raise ValueError naming it.

    Example:
        >>> check_label("odds_of_success", 0.5)
        0.5
        >>> check_label("odds_of_success", 1.5)
        Traceback (most recent call last):
        ...
        ValueError: label odds_of_success=1.5 is outside its range [0.0, 1.0]
    """
    info = DIMENSION_INFO[key]
    value = float(value)
    lo, hi = info.label_range
    if not (math.isfinite(value) and lo - tolerance <= value <= hi + tolerance):
        raise ValueError(f"label {key}={value} is outside its range [{lo}, {hi}]")
    return value
