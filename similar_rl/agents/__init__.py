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

import copy
import dataclasses
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

__all__ = sorted([*_LAZY, "check_settings", "setting"])


def setting(
    default: Any = dataclasses.MISSING, help: str = "", at_least: int | None = None, bounds: str = ""
) -> Any:
    """A dataclass field with the ``help`` of its ``--option``; a list or dict default is copied per instance.

    :func:`check_settings` refuses a value below ``at_least`` (integers) or outside ``bounds``, an interval
    such as ``"[0, 1]"``, ``"(0, inf)"`` or ``"(-inf, inf)"`` (any finite number).
    """
    metadata: dict[str, Any] = {"help": help, "at_least": at_least}
    if bounds:
        low, high = (None if end.strip().endswith("inf") else float(end) for end in bounds[1:-1].split(","))
        metadata["bounds"] = dict(low=low, high=high, low_open=bounds[0] == "(", high_open=bounds[-1] == ")")
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def check_settings(obj: Any) -> None:
    """Refuse a field of ``obj`` that breaks its :func:`setting`'s ``at_least`` or ``bounds`` (None passes
    where the field's type allows it)."""
    from similar_rl.harness.settings import check_min, check_range

    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("at_least") is not None:
            check_min("", obj, (f.name,), f.metadata["at_least"])
        if "bounds" in f.metadata and not (value is None and str(f.type).endswith("| None")):
            check_range(type(obj).__name__, f.name, value, **f.metadata["bounds"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(module), attr or name)
    raise AttributeError(f"module 'similar_rl.agents' has no attribute {name!r}")
