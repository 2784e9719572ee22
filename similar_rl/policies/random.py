"""A policy that picks uniformly among the adapter's candidate actions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from similar_rl.envs.actions import NOOP
from similar_rl.envs.base import BaseAdapter
from similar_rl.types import GUIState

logger = logging.getLogger(__name__)

#: What a policy proposes when the adapter offers no candidate at all.
FALLBACK_ACTION = NOOP


def check_positive(value: Any, name: str) -> int:
    """``value`` if it is an int >= 1 (not a bool); else a ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_n(n: int) -> None:
    check_positive(n, "n (the number of actions to propose)")


class UniformRandomPolicy:
    """Proposes ``n`` actions drawn uniformly, with replacement, from ``adapter.candidates(state)``.

    Args:
        adapter: any :class:`~similar_rl.envs.base.BaseAdapter`.

    Example:
        >>> import numpy as np
        >>> from similar_rl.envs import make_env
        >>> env, adapter = make_env("toy/click-button")
        >>> state, _ = adapter.reset(env, seed=0)
        >>> actions = UniformRandomPolicy(adapter).propose(state, [], 3, np.random.default_rng(0))
        >>> len(actions), all(a in adapter.candidates(state) for a in actions)
        (3, True)
    """

    name = "random"

    def __init__(self, adapter: BaseAdapter):
        self.adapter = adapter

    def propose(self, state: GUIState, history: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
        """``n`` candidate action strings (may repeat); ``noop()`` if the state offers no candidate."""
        _check_n(n)
        candidates = self.adapter.candidates(state)
        if not candidates:
            logger.debug("no candidate actions in this state; proposing %s", FALLBACK_ACTION)
            return [FALLBACK_ACTION] * n
        return [candidates[i] for i in rng.integers(len(candidates), size=n)]
