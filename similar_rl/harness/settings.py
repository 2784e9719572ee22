"""Settings for every command and trainer: YAML files, command-line overrides and dataclass validation, plus the
parsers of seed lists and JSON options.

A job keeps its settings in a dataclass: :func:`add_dataclass_arguments` exposes each field as ``--field-name
VALUE`` (read as YAML), :func:`build_args` merges the defaults, the YAML file and the overrides, rejecting
unknown keys and coercing scalars. The parsers raise :class:`argparse.ArgumentTypeError` (a ``ValueError``)
saying what to write instead, so they serve as argparse ``type=`` functions and as YAML validators.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Args:
    ...     lr: float = 0.1
    ...     steps: int = 10
    >>> build_args(Args, {"steps": 4}, {"lr": 1})
    Args(lr=1.0, steps=4)
    >>> build_args(Args, {"step": 4})
    Traceback (most recent call last):
    ...
    ValueError: unknown key(s) ['step'] for Args; valid keys: ['lr', 'steps']
    >>> parse_seeds("0-2,10")
    [0, 1, 2, 10]
    >>> parse_json_dict('{"temperature": 0.5}')
    {'temperature': 0.5}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _yaml_value(text: str) -> Any:
    """Read one command-line value as YAML (``"3"`` -> 3, ``"true"`` -> True, ``"[a, b]"`` -> list)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


class _ListValues(argparse.Action):
    """Collect ``--name a b`` or ``--name '[a, b]'`` into one flat list (each value read as YAML)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        flat = [item for value in values for item in (value if isinstance(value, list) else [value])]
        setattr(namespace, self.dest, flat)


def _default_text(f: dataclasses.Field) -> str:
    if f.default_factory is not dataclasses.MISSING:
        return str(f.default_factory()).replace("%", "%%")
    return "required" if f.default is dataclasses.MISSING else str(f.default).replace("%", "%%")


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    exclude: tuple[str, ...] = (),
    aliases: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Add ``--field-name`` for every field of dataclass ``cls`` but ``exclude``; unset options stay out of the
    namespace. A list field takes one or more values, a bool field may stand alone (true); ``aliases`` adds
    option strings to a field."""
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        kind = str(f.type).replace(" ", "")
        is_list = kind.startswith("list")
        extra: dict[str, Any] = {"nargs": "+", "action": _ListValues} if is_list else {}
        if kind == "bool":  # a bare --flag means true
            extra = {"nargs": "?", "const": True}
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            *(aliases or {}).get(f.name, ()),
            dest=f.name,
            type=_yaml_value,
            default=argparse.SUPPRESS,
            metavar=kind.removesuffix("|None").removeprefix("list[").removesuffix("]") if is_list else kind,
            help=f"{f.metadata.get('help', '')} (default: {_default_text(f)})",
            **extra,
        )


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict (an empty file gives ``{}``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(
            f"config file {str(path)!r} must hold a mapping of keys to values, got {type(data).__name__}"
        )
    return data


def _coerce(name: str, annotation: str, value: Any) -> Any:
    """Convert YAML scalars to the field's simple type (int, float, str, bool); leave the rest as is."""
    base = annotation.replace(" ", "").split("|")
    if value is None:
        if "None" in base:
            return None
        raise ValueError(f"{name} may not be null (it is {annotation})")
    if isinstance(value, Mapping) and any(b.startswith("dict") for b in base):
        return dict(value)
    kind = base[0]
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{name} must be a number, got {value!r}")
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if kind == "str" and not isinstance(value, str):
        if isinstance(value, list | tuple) and any(b.startswith("list") for b in base):
            return list(value)
        return str(value)
    if kind.startswith("dict"):
        raise ValueError(f"{name} must be a mapping such as '{{key: value}}', got {value!r}")
    if kind.startswith(("list", "tuple")):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ValueError(f"{name} must be a list such as '[a, b]', got {value!r}")
        return list(value)
    return value


def check_range(
    owner: str,
    name: str,
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Refuse a value that is not a finite number in ``[low, high]`` (a None bound: unbounded; ``low_open`` /
    ``high_open`` exclude the bound) with a ValueError naming ``owner.name``, the range and the value.

    Example:
        >>> check_range("Args", "gamma", 0.9, 0.0, 1.0)
        >>> check_range("Args", "gamma", 2.0, 0.0, 1.0)
        Traceback (most recent call last):
        ...
        ValueError: Args.gamma must be a finite number in [0.0, 1.0], got 2.0
    """
    left = "-inf" if low is None else str(low)
    right = "inf" if high is None else str(high)
    interval = (
        f"{'(' if low_open or low is None else '['}{left}, {right}{')' if high_open or high is None else ']'}"
    )
    bad = (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or (low is not None and (value <= low if low_open else value < low))
        or (high is not None and (value >= high if high_open else value > high))
    )
    if bad:
        raise ValueError(f"{owner}.{name} must be a finite number in {interval}, got {value!r}")


def check_min(prefix: str, obj: Any, names: Iterable[str], low: int) -> None:
    """Refuse a field of ``obj`` (one of ``names``) below ``low``; the message names ``prefix + name``.

    Example:
        >>> from types import SimpleNamespace
        >>> check_min("search.", SimpleNamespace(n=2, max_steps=0), ("n", "max_steps"), 1)
        Traceback (most recent call last):
        ...
        ValueError: search.max_steps must be at least 1, got 0
    """
    for name in names:
        value = getattr(obj, name)
        if value < low:
            bound = "0 or more" if low == 0 else f"at least {low}"
            raise ValueError(f"{prefix}{name} must be {bound}, got {value}")


def check_choice(name: str, value: Any, choices: Any) -> None:
    """Refuse a settings value not in ``choices`` (shown as given: a tuple or a list).

    Example:
        >>> check_choice("reward", "dense", ("total", "dims"))
        Traceback (most recent call last):
        ...
        ValueError: reward must be one of ('total', 'dims'), got 'dense'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def build_args(cls: type[T], *layers: Mapping[str, Any] | None) -> T:
    """Merge mappings of field values (later ones win) over the defaults of dataclass ``cls``."""
    names = {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for layer in layers:
        if not layer:
            continue
        unknown = sorted(set(layer) - set(names))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(names)}")
        for key, value in layer.items():
            values[key] = _coerce(key, names[key], value)
    return cls(**values)


def args_from_cli(cls: type[T], argv: list[str] | None = None, description: str = "") -> T:
    """Parse ``[--config FILE] [--field VALUE ...]`` into ``cls`` (what the example scripts call)."""
    parser = argparse.ArgumentParser(description=description, allow_abbrev=False)
    parser.add_argument(
        "--config", default=None, help="YAML file of settings (command-line options override it)"
    )
    add_dataclass_arguments(parser, cls)
    ns = vars(parser.parse_args(argv))
    config = ns.pop("config")
    return build_args(cls, load_yaml(config) if config else None, ns)


def save_args(args: Any, path: str | Path) -> None:
    """Write a dataclass of settings to ``path`` as JSON (recorded next to every run's outputs)."""
    Path(path).write_text(json.dumps(dataclasses.asdict(args), indent=2, sort_keys=True) + "\n")


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


def check_settings(obj: Any) -> None:
    """Refuse a field of ``obj`` that breaks the ``at_least`` or ``bounds`` of its
    :func:`~similar_rl.fields.option` (None passes where the field's type allows it)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if "at_least" in f.metadata:
            check_min("", obj, (f.name,), f.metadata["at_least"])
        if "bounds" in f.metadata and not (value is None and str(f.type).endswith("| None")):
            check_range(type(obj).__name__, f.name, value, **f.metadata["bounds"])
