"""Named plug-ins, imported on first use: the one registry behind env adapters, backbones, policies and judges.

A :class:`Registry` maps a name to a class or factory, or to the text ``"package.module:attr"`` that is imported
only when the name is first looked up (so registering costs no import, and optional dependencies load only when
their plug-in is used).

Example:
    >>> shapes = Registry("shape", {"dict": "builtins:dict"})
    >>> shapes.register("list", list)
    >>> shapes.get("dict")(a=1), shapes.get("list")("ab")
    ({'a': 1}, ['a', 'b'])
    >>> shapes.get("tuple")
    Traceback (most recent call last):
    ...
    ValueError: unknown shape 'tuple'; registered: ['dict', 'list']
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any


def resolve(target: Any) -> Any:
    """``"package.module:attr"`` -> the attribute (imported); anything else is returned as is."""
    if not isinstance(target, str):
        return target
    module, attr = _split_path(target, "a plug-in path")
    return getattr(importlib.import_module(module), attr)


def _split_path(target: str, what: str) -> tuple[str, str]:
    """``"package.module:attr"`` -> ``(module, attr)``; a ValueError naming ``what`` for anything else."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{what} must look like 'package.module:ClassName', got {target!r}")
    return module, attr


class Registry(Mapping[str, Any]):
    """Name -> class, factory or ``"module:attr"`` path (see the module docstring).

    Args:
        kind: what is registered, named in errors ("backbone", "judge"...).
        entries: the built-in entries.
        listing: the words before the list of names in the unknown-name error.
    """

    def __init__(
        self, kind: str, entries: Mapping[str, Any] | None = None, listing: str = "registered:"
    ) -> None:
        self.kind = kind
        self.listing = listing
        self._entries: dict[str, Any] = dict(entries or {})

    def register(self, name: str, target: Any, *, overwrite: bool = True) -> None:
        """Register ``target`` (a class, a factory or a ``"module:attr"`` path) under ``name``."""
        if isinstance(target, str):
            _split_path(target, f"{self.kind} target")
        if name in self._entries and not overwrite:
            raise ValueError(
                f"a {self.kind} named {name!r} is already registered; pass overwrite=True to replace it"
            )
        self._entries[name] = target

    def get(self, name: str) -> Any:  # type: ignore[override]
        """The class or factory registered under ``name`` (imported now if registered by path)."""
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; {self.listing} {sorted(self._entries)}")
        return resolve(self._entries[name])

    def __getitem__(self, name: str) -> Any:
        return self._entries[name]

    def __delitem__(self, name: str) -> None:
        """Unregister ``name`` (a plug-in registered for a test or a session)."""
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
