"""Backbone registry: a backbone kind name -> the class that implements it (imported lazily).

Add a backbone by subclassing :class:`~similar_rl.model.backbones.base.Backbone` and calling
:func:`register_backbone`.

Example:
    >>> sorted(BACKBONES)
    ['default', 'hf', 'joint']
    >>> get_backbone_class("default").__name__
    'DefaultBackbone'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from similar_rl.registry import Registry

if TYPE_CHECKING:
    from similar_rl.model.backbones.base import Backbone

#: kind -> backbone class (or "module:ClassName", imported on first use)
BACKBONES = Registry(
    "backbone",
    {
        "default": "similar_rl.model.backbones.default:DefaultBackbone",
        "hf": "similar_rl.model.backbones.hf:HFBackbone",
        "joint": "similar_rl.model.backbones.joint:JointBackbone",
    },
)


def register_backbone(kind: str, target: Any) -> None:
    """Register a backbone class (or ``"package.module:ClassName"``) under ``kind``."""
    BACKBONES.register(kind, target)


def get_backbone_class(kind: str) -> type[Backbone]:
    """The class registered for ``kind``."""
    return BACKBONES.get(kind)
