"""Dataclass fields that carry their ``--help`` text, the one spelling of every settings class's options.

The flags of each command are generated from these fields (:mod:`similar_rl.harness.settings` reads the help).

    >>> from dataclasses import dataclass, fields
    >>> @dataclass
    ... class Example:
    ...     n: int = option(5, "how many")
    ...     names: list = option(list, "a fresh list per instance")
    >>> [f.metadata["help"] for f in fields(Example)], Example().names
    (['how many', 'a fresh list per instance'], [])
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def option(default: Any, help: str) -> Any:
    """A dataclass field with ``help`` in its metadata; a callable ``default`` is a default factory."""
    if callable(default):
        return field(default_factory=default, metadata={"help": help})
    return field(default=default, metadata={"help": help})
