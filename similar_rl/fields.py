"""Dataclass fields that carry their ``--help`` text and limits: the one spelling of every settings option.

Each command's flags are generated from these fields, and
:func:`similar_rl.harness.settings.check_settings` enforces the limits.

    >>> from dataclasses import dataclass, fields
    >>> @dataclass
    ... class Example:
    ...     n: int = option(5, "how many", at_least=1)
    ...     names: list = option([], "a fresh list per instance")
    >>> [f.metadata["help"] for f in fields(Example)], Example().names is not Example().names
    (['how many', 'a fresh list per instance'], True)
"""

from __future__ import annotations

import copy
from dataclasses import MISSING, field
from typing import Any


def option(default: Any = MISSING, help: str = "", at_least: int | None = None, bounds: str = "") -> Any:
    """A dataclass field with the ``help`` of its ``--option``.

    A callable ``default`` is a default factory; a list or dict default is copied for each instance.
    ``at_least`` (integers) and ``bounds``, an interval such as ``"[0, 1]"``, ``"(0, inf)"`` or
    ``"(-inf, inf)"`` (any finite number), are the limits that ``check_settings`` enforces.
    """
    metadata: dict[str, Any] = {"help": help}
    if at_least is not None:
        metadata["at_least"] = at_least
    if bounds:
        low, high = (None if end.strip().endswith("inf") else float(end) for end in bounds[1:-1].split(","))
        metadata["bounds"] = dict(low=low, high=high, low_open=bounds[0] == "(", high_open=bounds[-1] == ")")
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return field(default=default, metadata=metadata)
