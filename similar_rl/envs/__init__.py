"""GUI environments and their adapters.

``make_env(env_id)`` and ``get_adapter(env_id)`` pick the adapter by the id's prefix: ``miniwob/...``
(MiniWoB++ in headless Chromium) or ``toy/...`` (the package's deterministic PIL-rendered env).
"""

from __future__ import annotations

from typing import Any

from similar_rl.envs.actions import Action, ActionParseError, extract_action, format_action, parse_action
from similar_rl.envs.base import BaseAdapter, EnvFailure, InvalidActionError, StepOutcome
from similar_rl.registry import Registry

#: env-id prefix -> adapter class (or "module:AdapterClass", imported only when used).
ADAPTERS = Registry(
    "adapter",
    {"miniwob/": "similar_rl.envs.miniwob:MiniWoBAdapter", "toy/": "similar_rl.envs.toy:ToyAdapter"},
)


def register_adapter(prefix: str, target: Any) -> None:
    """Register an adapter class (or ``"package.module:ClassName"``) for env ids starting with ``prefix``."""
    ADAPTERS.register(prefix, target)


def get_adapter(env_id: str, **kwargs: Any) -> BaseAdapter:
    """Instantiate the adapter registered for ``env_id``'s prefix."""
    for prefix in ADAPTERS:
        if env_id.startswith(prefix):
            return ADAPTERS.get(prefix)(**kwargs)
    raise ValueError(f"no adapter for env id {env_id!r}; known prefixes: {sorted(ADAPTERS)}")


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
