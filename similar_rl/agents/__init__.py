"""Example agent trainers rewarded by Similar: PPO (the project's own loop over Gymnasium GUI envs) and GRPO
(TRL's GRPOTrainer on step-level prompts). Settings are dataclasses (:class:`PPOArgs`, :class:`GRPOArgs`) read
from YAML plus command-line overrides (:func:`similar_rl.harness.settings.args_from_cli`).

Importing this package is light: the trainers' heavy modules load on first use.

Example:
    >>> from similar_rl.agents import PPOArgs
    >>> PPOArgs(reward="sparse").batch_size
    256
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "PPOArgs": "similar_rl.agents.ppo",
    "train_ppo": "similar_rl.agents.ppo:train",
    "evaluate_ppo": "similar_rl.agents.ppo:evaluate",
    "GRPOArgs": "similar_rl.agents.grpo",
    "train_grpo": "similar_rl.agents.grpo:train",
    "evaluate_grpo_policy": "similar_rl.agents.grpo:evaluate_policy",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(module), attr or name)
    raise AttributeError(f"module 'similar_rl.agents' has no attribute {name!r}")
