"""Parsers of command-line and config values shared by every command: seed lists and JSON options.

Both raise :class:`argparse.ArgumentTypeError` (a ``ValueError`` to argparse users) whose message says what to
write instead, so they work as argparse ``type=`` functions and as plain validators of YAML values.

Example:
    >>> parse_seeds("0-2,10")
    [0, 1, 2, 10]
    >>> parse_json_dict('{"temperature": 0.5}')
    {'temperature': 0.5}
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def parse_seeds(text: str) -> list[int]:
    """Parse ``"0-4"``, ``"1,3,7"`` or ``"0-2,10"`` into a list of distinct seeds, in order."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            values = range(int(lo), int(hi) + 1) if sep and lo else [int(part)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"--seeds takes '0-4' or '1,3,7', got {text!r}") from None
        seeds.extend(v for v in values if v not in seeds)
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds names no seed: {text!r}")
    return seeds


def parse_json_dict(text: str) -> dict[str, Any]:
    """A JSON object given on the command line (``'{"temperature": 0.5}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"expected a JSON object, e.g. '{{\"temperature\": 0.5}}': {exc}"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value
