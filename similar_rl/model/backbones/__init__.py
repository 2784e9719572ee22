"""Backbone registry: a backbone kind name -> the class that implements it (imported lazily).

Add a backbone by subclassing :class:`~similar_rl.model.backbones.base.Backbone` and calling
:func:`register_backbone`.

Example:
    >>> sorted(BACKBONES)
    ['default', 'hf']
    >>> get_backbone_class("default").__name__
    'DefaultBackbone'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from similar_rl.model.backbones.base import Backbone

#: kind -> "module:ClassName"
BACKBONES: dict[str, str] = {
    "default": "similar_rl.model.backbones.default:DefaultBackbone",
    "hf": "similar_rl.model.backbones.hf:HFBackbone",
}


def register_backbone(kind: str, target: str) -> None:
    """Register a backbone class given as ``"package.module:ClassName"`` under ``kind``."""
    if ":" not in target:
        raise ValueError(f"backbone target must look like 'package.module:ClassName', got {target!r}")
    BACKBONES[kind] = target


def get_backbone_class(kind: str) -> type[Backbone]:
    """The class registered for ``kind``."""
    if kind not in BACKBONES:
        raise ValueError(f"unknown backbone {kind!r}; registered: {sorted(BACKBONES)}")
    module, name = BACKBONES[kind].split(":")
    return getattr(importlib.import_module(module), name)
