"""GUI environments and their adapters.

``make_env(env_id)`` and ``get_adapter(env_id)`` pick the adapter by the id's prefix: ``miniwob/...``
(MiniWoB++ in headless Chromium) or ``toy/...`` (the package's deterministic PIL-rendered env).
"""

from __future__ import annotations

import importlib
from typing import Any

from similar_rl.envs.actions import Action, ActionParseError, extract_action, format_action, parse_action
from similar_rl.envs.base import BaseAdapter, EnvFailure, InvalidActionError, StepOutcome

# env-id prefix -> "module:AdapterClass"; adapters are imported only when used.
_ADAPTERS: dict[str, str] = {
    "miniwob/": "similar_rl.envs.miniwob:MiniWoBAdapter",
    "toy/": "similar_rl.envs.toy:ToyAdapter",
}


def register_adapter(prefix: str, target: str) -> None:
    """Register an adapter class (``"package.module:ClassName"``) for env ids starting with ``prefix``."""
    if ":" not in target:
        raise ValueError(f"adapter target must look like 'package.module:ClassName', got {target!r}")
    _ADAPTERS[prefix] = target


def get_adapter(env_id: str, **kwargs: Any) -> BaseAdapter:
    """Instantiate the adapter registered for ``env_id``'s prefix."""
    for prefix, target in _ADAPTERS.items():
        if env_id.startswith(prefix):
            module, _, cls = target.partition(":")
            return getattr(importlib.import_module(module), cls)(**kwargs)
    raise ValueError(f"no adapter for env id {env_id!r}; known prefixes: {sorted(_ADAPTERS)}")


def make_env(env_id: str, **kwargs: Any) -> tuple[Any, BaseAdapter]:
    """Create the env for ``env_id`` and return it with its adapter."""
    adapter = get_adapter(env_id)
    return adapter.make_env(env_id, **kwargs), adapter


__all__ = [
    "Action",
    "ActionParseError",
    "BaseAdapter",
    "EnvFailure",
    "InvalidActionError",
    "StepOutcome",
    "extract_action",
    "format_action",
    "get_adapter",
    "make_env",
    "parse_action",
    "register_adapter",
]
