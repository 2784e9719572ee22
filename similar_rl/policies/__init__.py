"""Policies that propose candidate action strings (the :class:`~similar_rl.types.Policy` protocol).

``make_policy(name, adapter, **kwargs)`` builds one by its name in :data:`POLICIES`: ``"random"``
(:class:`UniformRandomPolicy`), ``"heuristic"`` (:class:`HeuristicPolicy`), ``"mixed"``
(:class:`MixedPolicy`) or ``"hf"`` (``similar_rl.policies.hf.HFPolicy``, a local Hugging Face LM, imported only when asked for).

Example:
    >>> import numpy as np
    >>> from similar_rl.envs import make_env
    >>> env, adapter = make_env("toy/click-button")
    >>> state, _ = adapter.reset(env, seed=0)
    >>> policy = make_policy("heuristic", adapter, temperature=0)
    >>> policy.propose(state, history=[], n=1, rng=np.random.default_rng(0))
    ['click(ref=5)']
    >>> state.element(5).text
    'Submit'
"""

from __future__ import annotations

from typing import Any

from similar_rl.policies.heuristic import HeuristicPolicy
from similar_rl.policies.mixed import MixedPolicy
from similar_rl.policies.random import UniformRandomPolicy
from similar_rl.registry import Registry

#: Policy name -> class, or ``"module:Class"`` imported on first use.
POLICIES = Registry(
    "policy",
    {
        "random": UniformRandomPolicy,
        "heuristic": HeuristicPolicy,
        "mixed": MixedPolicy,
        "hf": "similar_rl.policies.hf:HFPolicy",
    },
    listing="choose one of",
)


def register_policy(name: str, target: type | str) -> None:
    """Register a policy class (or ``"package.module:ClassName"``) under ``name``."""
    POLICIES.register(name, target)


def get_policy_class(name: str) -> type:
    """The class registered under ``name`` (importing it if registered by path)."""
    return POLICIES.get(name)


def make_policy(name: str, adapter: Any, **kwargs: Any) -> Any:
    """Build the policy ``name`` for ``adapter``: ``POLICIES[name](adapter, **kwargs)``."""
    return get_policy_class(name)(adapter, **kwargs)


__all__ = [
    "POLICIES",
    "HeuristicPolicy",
    "MixedPolicy",
    "UniformRandomPolicy",
    "get_policy_class",
    "make_policy",
    "register_policy",
]
