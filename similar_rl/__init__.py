"""similar_rl: the Similar step-wise, five-dimensional reward model for reinforcement learning of GUI agents.

Importing the package is light: torch, transformers, trl and gymnasium load only when a feature that needs
them is first used.

Example:
    >>> import similar_rl
    >>> similar_rl.DIMENSIONS
    ('helpfulness', 'odds_of_success', 'efficiency', 'task_relevance', 'coherence')
"""

from __future__ import annotations

import importlib
from typing import Any

from similar_rl.dimensions import DIMENSION_INFO, DIMENSIONS, SCORE_KEYS, TOTAL_WEIGHTS
from similar_rl.types import DimensionScores, GUIState, StepInput

__version__ = "0.1.0"

# Public names that live in modules with heavy imports: name -> module.
_LAZY: dict[str, str] = {
    "SimilarRewardModel": "similar_rl.model",
    "load_default_model": "similar_rl.model",
    "Scorer": "similar_rl.scoring",
    "SimilarRewardWrapper": "similar_rl.wrappers",
}

__all__ = [
    "DIMENSIONS",
    "DIMENSION_INFO",
    "SCORE_KEYS",
    "TOTAL_WEIGHTS",
    "DimensionScores",
    "GUIState",
    "StepInput",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'similar_rl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
