"""Checkpoint files: ``config.json`` + ``model.safetensors``, read defensively (never unpickled).

Example:
    >>> import tempfile, torch
    >>> folder = tempfile.mkdtemp()
    >>> write_tensors(Path(folder) / WEIGHTS_NAME, {"w": torch.ones(2)})
    >>> read_tensors(Path(folder) / WEIGHTS_NAME)["w"].tolist()
    [1.0, 1.0]
    >>> check_tensors({"w": (2,), "b": (1,)}, {"w": torch.ones(3), "x": torch.ones(1)}, source="model.safetensors")
    Traceback (most recent call last):
    ...
    similar_rl.model.checkpoint.CheckpointError: model.safetensors does not match the model: missing tensors ['b']; unexpected tensors ['x']; mis-shaped tensors ['w: expected (2,), got (3,)']
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MAX_CONFIG_BYTES = 1 << 20
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol >= 2, zip (torch.save)


class CheckpointError(ValueError):
    """A checkpoint folder or file that cannot be loaded; the message names the file and the problem."""


def read_config_json(folder: Path) -> dict[str, Any]:
    """Read and parse ``folder/config.json`` (a JSON object) with clear errors."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a Similar checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(
            f"{path} is {path.stat().st_size} bytes; a config is at most {MAX_CONFIG_BYTES}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def resolve_inside(folder: Path, relative: str, field: str) -> Path:
    """Resolve a path stored in a config relative to ``folder``; refuse absolute paths and paths that leave it."""
    if os.path.isabs(relative):
        raise CheckpointError(
            f"config field {field!r} is an absolute path ({relative!r}); a checkpoint may only refer to files inside "
            f"its folder. Pass the location explicitly instead (e.g. from_pretrained(path, backbone_path=...))"
        )
    root = folder.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise CheckpointError(f"config field {field!r} points outside the checkpoint folder: {relative!r}")
    return target


def write_tensors(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Write tensors as safetensors (contiguous CPU copies), atomically via a temporary file."""
    from safetensors.torch import save_file

    state = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=metadata or {"format": "pt"})
    os.replace(tmp, path)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; refuse pickles and report truncated or corrupt files by name."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
    if any(head.startswith(magic) for magic in _PICKLE_MAGIC):
        raise CheckpointError(
            f"{path} is a pickle / torch.save file, not safetensors; pickles are never loaded "
            "(convert it with safetensors.torch.save_file in a trusted environment)"
        )
    if size < 8:
        raise CheckpointError(f"{path} is truncated ({size} bytes): not a safetensors file")
    header_len = int.from_bytes(head, "little")
    if header_len <= 0 or 8 + header_len > size:
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file (header claims {header_len} bytes, file has {size})"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt or truncated: {exc}") from None


def check_tensors(
    expected: Mapping[str, tuple[int, ...]], got: Mapping[str, torch.Tensor], source: str
) -> None:
    """Raise a CheckpointError listing missing, unexpected and mis-shaped tensors by name."""
    shaped = [
        f"{name}: expected {tuple(expected[name])}, got {tuple(got[name].shape)}"
        for name in sorted(set(expected) & set(got))
        if tuple(got[name].shape) != tuple(expected[name])
    ]
    missing, unexpected = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    found = (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped))
    problems = [f"{what} tensors {names}" for what, names in found if names]
    if problems:
        raise CheckpointError(f"{source} does not match the model: " + "; ".join(problems))
