"""The backbone interface and the LRU cache that makes "prompt once, score many" work across calls.

Example:
    >>> cache = LRUCache(2)
    >>> cache.put("a", 1); cache.put("b", 2); cache.put("c", 3)
    >>> cache.get("a") is None, cache.get("c")
    (True, 3)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from similar_rl.types import StepInput


class LRUCache:
    """A small least-recently-used map (``size`` 0 disables it)."""

    def __init__(self, size: int):
        if size < 0:
            raise ValueError(f"cache size must be >= 0, got {size}")
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Any) -> Any:
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._data.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        if self.size == 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def unique_prompts(steps: Sequence[StepInput]) -> tuple[list[StepInput], list[int]]:
    """Group steps by state: returns one representative step per unique ``prompt_key`` and, per step, its group.

    Example:
        >>> s = StepInput("Click OK", "click(ref=1)")
        >>> reps, idx = unique_prompts([s, s.with_action("noop()"), StepInput("Other", "noop()")])
        >>> len(reps), idx
        (2, [0, 0, 1])
    """
    reps: dict[str, StepInput] = {}
    for step in steps:
        if not isinstance(step, StepInput):
            raise TypeError(f"steps must be StepInput objects, got {type(step).__name__}")
        reps.setdefault(step.prompt_key, step)
    group = {key: g for g, key in enumerate(reps)}
    return list(reps.values()), [group[step.prompt_key] for step in steps]


class Backbone(nn.Module):
    """Turns steps into features: ``x`` (prompt / state side) and ``z`` (prompt + candidate action).

    Subclasses set ``kind``, ``x_dim`` and ``z_dim`` and implement :meth:`encode`. Frozen weights reload from
    their source; only what it cannot give back (LoRA adapters) goes in :meth:`extra_state_dict`.
    """

    kind: ClassVar[str] = ""
    x_dim: int
    z_dim: int
    #: Columns of ``z`` for the state alone and the action relative to it (``ridge_fit: advantage``).
    state_columns: list[int] | None = None
    action_columns: list[int] | None = None
    #: Named column ranges of ``z``: ``z_blocks[i]`` is ``(start, end)`` of block ``z_block_names[i]``.
    z_blocks: list[tuple[int, int]] | None = None
    z_block_names: list[str] | None = None

    #: The backbone's ``SimilarConfig.backbone_options`` and their defaults.
    OPTIONS: ClassVar[dict[str, Any]] = {}

    def read_options(self, config: Any) -> dict[str, Any]:
        """``OPTIONS`` updated by ``config.backbone_options``; an option the backbone does not know is refused."""
        unknown = sorted(set(config.backbone_options) - set(self.OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown backbone_options {unknown} for backbone {self.kind!r}; known: {sorted(self.OPTIONS)}"
            )
        return {**self.OPTIONS, **config.backbone_options}

    def block_columns(self, names: Sequence[str]) -> list[int]:
        """The columns of ``z`` in the named blocks; names the backbone lacks add nothing."""
        ranges = dict(zip(self.z_block_names or [], self.z_blocks or [], strict=True))
        return [c for name in names if name in ranges for c in range(*ranges[name])]

    def encode(self, steps: Sequence[StepInput]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``x`` of shape ``(B, x_dim)`` and ``z`` of shape ``(B, z_dim)`` (float32, on the model device)."""
        raise NotImplementedError

    def extra_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors a checkpoint must hold for this backbone (default: none)."""
        return {}

    def load_extra_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load what :meth:`extra_state_dict` returned. ``state`` is already checked against it by name and shape."""
        if state:
            raise ValueError(f"backbone {self.kind!r} expects no saved tensors, got {sorted(state)}")

    def save_source(self, folder: Path) -> str | None:
        """Copy what is needed to rebuild this backbone into ``folder``; return its path relative to ``folder``."""
        return None

    def clear_cache(self) -> None:
        """Drop cached prompt features (call after changing trainable backbone weights)."""

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")
