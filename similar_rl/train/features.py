"""Batched feature extraction (``x``, ``z`` per step via ``model.encode``) with an on-disk cache.

The cache lives in ``<cache_dir>/<fingerprint>/``; the fingerprint hashes what decides the features (the
backbone fields of the model config, its path's file sizes and times, and trainable backbone tensors such as
LoRA adapters), not the heads, so stages 1 and 2 rerun without re-encoding. Rows are keyed by
``StepInput.key``; each run appends safetensors shards every ``shard_rows`` rows, so an interrupted run keeps
what it finished.

Example:
    >>> import torch
    >>> class Echo:  # any object with .config, .backbone and .encode works
    ...     config = None
    ...     backbone = None
    ...     def encode(self, steps):
    ...         n = torch.tensor([[float(len(s.action))] for s in steps])
    ...         return n, 2 * n
    >>> from similar_rl.types import StepInput
    >>> x, z = extract_features(Echo(), [StepInput("Do it", "noop()")], use_cache=False, progress=False)
    >>> x.tolist(), z.tolist()
    ([[6.0]], [[12.0]])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from similar_rl.types import StepInput

logger = logging.getLogger(__name__)

#: SimilarConfig fields that change the features (everything else only changes the heads).
FEATURE_FIELDS = (
    "backbone",
    "backbone_path",
    "backbone_options",
    "use_history",
    "use_image",
    "x_dim",
    "z_dim",
)
#: Part of every fingerprint; bump it when the code that computes features changes (the fingerprint only sees
#: the config), or caches keep serving the old features.
CACHE_FORMAT = "similar_rl.features.v2"  # v2: unambiguous StepInput keys


def default_cache_dir() -> Path:
    """``$SIMILAR_RL_CACHE`` or ``~/.cache/similar_rl/features``."""
    env = os.environ.get("SIMILAR_RL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "similar_rl" / "features"


def _path_stats(path: str) -> list[Any]:
    folder = Path(path)
    if not folder.is_dir():
        return [path]
    stats = [
        [f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in sorted(folder.iterdir()) if f.is_file()
    ]
    return [str(folder.resolve()), stats]


def feature_fingerprint(model: Any) -> str:
    """Hash of everything that decides a model's features (see the module docstring)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(CACHE_FORMAT.encode())
    config = getattr(model, "config", None)
    if config is not None:
        data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
        part = {k: data.get(k) for k in FEATURE_FIELDS}
        if part.get("backbone_path"):
            part["backbone_path"] = _path_stats(str(part["backbone_path"]))
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    backbone = getattr(model, "backbone", None)
    if backbone is not None and hasattr(backbone, "extra_state_dict"):
        for name, tensor in sorted(backbone.extra_state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


class FeatureCache:
    """Rows of (x, z) by step key in one fingerprint folder (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._rows: dict[str, tuple[int, int]] = {}
        self._shards: list[dict[str, torch.Tensor]] = []
        for path in sorted(self.folder.glob("shard-*.safetensors")):  # none when the folder is missing
            self._load_shard(path)

    def _load_shard(self, path: Path) -> None:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                keys = json.loads(fh.metadata()["keys"])
                tensors = {"x": fh.get_tensor("x"), "z": fh.get_tensor("z")}
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            logger.warning(
                "ignoring unreadable feature cache shard %s (%s); it will be recomputed", path, exc
            )
            return
        if len(keys) != tensors["x"].shape[0] or len(keys) != tensors["z"].shape[0]:
            logger.warning(
                "ignoring feature cache shard %s: %d keys for %d rows", path, len(keys), len(tensors["x"])
            )
            return
        self._rows.update({key: (len(self._shards), row) for row, key in enumerate(keys)})
        self._shards.append(tensors)

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        shard, row = self._rows[key]
        return self._shards[shard]["x"][row], self._shards[shard]["z"][row]

    def add(self, keys: Sequence[str], x: torch.Tensor, z: torch.Tensor, write: bool = True) -> None:
        """Add rows (and write them as a new shard if ``write``)."""
        if not keys:
            return
        x, z = (t.detach().to("cpu", torch.float32).contiguous() for t in (x, z))
        self._rows.update({key: (len(self._shards), row) for row, key in enumerate(keys)})
        self._shards.append({"x": x, "z": z})
        if write:
            from safetensors.torch import save_file

            self.folder.mkdir(parents=True, exist_ok=True)
            name = hashlib.blake2b("".join(keys).encode(), digest_size=10).hexdigest()
            path = self.folder / f"shard-{time.time_ns()}-{name}.safetensors"
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            save_file({"x": x, "z": z}, str(tmp), metadata={"keys": json.dumps(list(keys))})
            os.replace(tmp, path)


def extract_features(
    model: Any,
    inputs: Sequence[StepInput],
    batch_size: int = 32,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
    desc: str = "features",
    shard_rows: int = 2048,
    accelerator: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (N, x_dim) and ``z`` (N, z_dim) float32 CPU tensors for ``inputs``, from the cache or ``model.encode``.

    Steps of one state are encoded in the same batch (the backbone computes the prompt side once per state).
    With several accelerate processes, each encodes a share of the missing rows into the cache, then all
    read the cache (the cache folder must be shared; ``use_cache`` is forced on).
    """
    n = len(inputs)
    multi = accelerator is not None and accelerator.num_processes > 1
    cache = None
    if use_cache or multi:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cache = FeatureCache(folder / feature_fingerprint(model))
    keys = [s.key for s in inputs]
    missing_keys = list(dict.fromkeys(k for k in keys if cache is None or k not in cache))
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    # Group candidates of one state together: order missing rows by their state's first appearance.
    state_order = {key: i for i, key in enumerate(dict.fromkeys(s.prompt_key for s in inputs))}
    missing_keys.sort(key=lambda k: state_order[inputs[first[k]].prompt_key])
    mine = missing_keys
    if multi:
        # Every process must list the missing rows before any of them writes to the shared cache.
        accelerator.wait_for_everyone()
        with accelerator.split_between_processes(missing_keys) as share:
            mine = list(share)
    distinct, todo = len(first), len(missing_keys)
    logger.info(
        "%s: %d steps, %d distinct, %d cached, %d to encode", desc, n, distinct, distinct - todo, todo
    )
    local: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    if mine:
        from tqdm.auto import tqdm

        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        pending_keys: list[str] = []
        pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        bar = tqdm(total=len(mine), desc=desc, unit="step", disable=not progress)
        try:
            with torch.no_grad():
                for start in range(0, len(mine), batch_size):
                    batch_keys = mine[start : start + batch_size]
                    x, z = model.encode([inputs[first[k]] for k in batch_keys])
                    x, z = x.detach().to("cpu", torch.float32), z.detach().to("cpu", torch.float32)
                    if x.shape[0] != len(batch_keys) or z.shape[0] != len(batch_keys):
                        raise RuntimeError(
                            f"model.encode returned {x.shape[0]}/{z.shape[0]} rows for {len(batch_keys)} steps"
                        )
                    pending_keys.extend(batch_keys)
                    pending.append((x, z))
                    bar.update(len(batch_keys))
                    if len(pending_keys) >= shard_rows:
                        _flush(cache, pending_keys, pending, local)
                        pending_keys, pending = [], []
        finally:
            if pending_keys:
                _flush(cache, pending_keys, pending, local)
            bar.close()
            if was_training and hasattr(model, "train"):
                model.train()
    if multi:
        accelerator.wait_for_everyone()
        cache = FeatureCache(cache.folder)
    rows = [local[k] if k in local else cache.get(k) for k in keys]  # type: ignore[union-attr]
    if not rows:
        return torch.zeros(0, 0), torch.zeros(0, 0)
    return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


def _flush(
    cache: FeatureCache | None, keys: list[str], parts: list[tuple[torch.Tensor, torch.Tensor]], local: dict
) -> None:
    """Move encoded rows into ``local`` (and into ``cache`` as a new shard, unless it is None)."""
    x, z = (torch.cat(column) for column in zip(*parts, strict=True))
    if cache is not None:
        cache.add(keys, x, z)
    for i, k in enumerate(keys):
        local[k] = (x[i], z[i])
