"""A policy that mixes the heuristic and the uniform random policy, slot by slot.

Each of the ``n`` proposed actions comes from :class:`~similar_rl.policies.random.UniformRandomPolicy` with
probability ``random_share`` and from :class:`~similar_rl.policies.heuristic.HeuristicPolicy` otherwise. On pages
where the heuristic's text matching points the wrong way (an instruction that names no element), the random
share still reaches the goal now and then, and MCTS-P needs just one successful calibration episode per task.

Example:
    >>> import numpy as np
    >>> from similar_rl.envs import make_env
    >>> env, adapter = make_env("toy/click-button")
    >>> state, _ = adapter.reset(env, seed=0)
    >>> actions = MixedPolicy(adapter, random_share=0.5).propose(state, [], 4, np.random.default_rng(0))
    >>> len(actions), all(a in adapter.candidates(state) for a in actions)
    (4, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from similar_rl.envs.base import BaseAdapter
from similar_rl.policies.heuristic import HeuristicPolicy
from similar_rl.policies.random import UniformRandomPolicy, _check_n
from similar_rl.types import GUIState


class MixedPolicy:
    """Heuristic proposals with a ``random_share`` of uniform random ones (see the module docstring).

    Args:
        adapter: any :class:`~similar_rl.envs.base.BaseAdapter`.
        random_share: probability that one proposed action is drawn uniformly, in [0, 1].
        temperature: the heuristic's softmax temperature.
    """

    name = "mixed"

    def __init__(self, adapter: BaseAdapter, random_share: float = 0.5, temperature: float = 1.0):
        if not isinstance(random_share, int | float) or not 0 <= random_share <= 1:  # NaN fails the range too
            raise ValueError(f"random_share must be a number in [0, 1], got {random_share!r}")
        self.adapter = adapter
        self.random_share = float(random_share)
        self.heuristic = HeuristicPolicy(adapter, temperature=temperature)
        self.random = UniformRandomPolicy(adapter)

    def propose(self, state: GUIState, history: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
        """``n`` action strings, each from the random policy with probability ``random_share``."""
        _check_n(n)
        use_random = rng.random(n) < self.random_share
        k = int(use_random.sum())
        drawn = iter(self.random.propose(state, history, k, rng) if k else [])
        guided = iter(self.heuristic.propose(state, history, n - k, rng) if n - k else [])
        return [next(drawn) if r else next(guided) for r in use_random]
