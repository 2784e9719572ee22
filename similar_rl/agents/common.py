"""What both agent trainers share: loading the reward model, the run logger (TensorBoard + W&B) and
safetensors checkpoints with a JSON trainer state.

Example:
    >>> import tempfile, torch
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.Adam(net.parameters())
    >>> net(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> folder = tempfile.mkdtemp() + "/checkpoint"
    >>> _ = save_checkpoint(folder, net, opt, {"global_step": 8})
    >>> net2 = torch.nn.Linear(2, 1); opt2 = torch.optim.Adam(net2.parameters())
    >>> load_checkpoint(folder, net2, opt2)["global_step"]
    8
    >>> bool(torch.equal(net.weight, net2.weight))
    True
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from similar_rl.data.dataset import fsync_dir
from similar_rl.harness.settings import save_args

WEIGHTS_NAME = "policy.safetensors"
STATE_NAME = "trainer_state.json"


def start_run(args: Any, default_name: str) -> tuple[str, Path]:
    """``(run_name, run_dir)``: ``<output_dir>/<run_name or default_name>``, created, with ``args.json`` in it."""
    run_name = args.run_name or default_name
    run_dir = Path(args.output_dir) / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    save_args(args, run_dir / "args.json")
    return run_name, run_dir


def load_scorer(
    reward_model: str, batch_size: int = 32, cache_size: int = 4096, device: str | None = None
) -> Any:
    """A :class:`similar_rl.Scorer` over ``reward_model``: ``"default"`` (the shipped model) or a folder
    written by ``SimilarRewardModel.save_pretrained``."""
    from similar_rl.model import load_model
    from similar_rl.scoring import Scorer

    return Scorer(load_model(reward_model), batch_size=batch_size, cache_size=cache_size, device=device)


def save_checkpoint(
    folder: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
) -> Path:
    """Write ``policy.safetensors`` (weights, optimizer slots, torch RNG) and ``trainer_state.json``.

    ``state`` must be JSON-serialisable (settings, counters, numpy RNG state). Both files go into a new
    sibling folder ``<folder>.<n>``, flushed to disk; then the symlink ``folder`` is switched to it in one
    ``os.replace`` and older siblings are removed. A kill at any moment leaves ``folder`` pointing at a complete,
    matching pair (the previous one until the switch). Returns ``folder``.
    """
    link = Path(folder)
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_dir() and not link.is_symlink():  # a folder of the layout before links, or an empty one
        names = {p.name for p in link.iterdir()}
        if not names <= {WEIGHTS_NAME, STATE_NAME}:
            raise FileExistsError(f"{str(link)!r} is a folder that is not a checkpoint; choose another path")
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    full_state = dict(state)
    if optimizer is not None:
        opt_state = optimizer.state_dict()
        for idx, slots in opt_state["state"].items():
            for slot, value in slots.items():
                tensors[f"optim.{idx}.{slot}"] = torch.as_tensor(value).detach().clone().contiguous()
        full_state["optimizer_param_groups"] = opt_state["param_groups"]
    tensors["rng.torch"] = torch.get_rng_state()
    target = link.with_name(f"{link.name}.{time.time_ns()}")
    target.mkdir()
    save_file(tensors, str(target / WEIGHTS_NAME), metadata={"format": "pt"})
    _write_state(target / STATE_NAME, full_state)
    for path in (target / WEIGHTS_NAME, target / STATE_NAME):
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(target)
    tmp_link = link.with_name(f".{link.name}.link{os.getpid()}")
    tmp_link.unlink(missing_ok=True)
    os.symlink(target.name, tmp_link)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    os.replace(tmp_link, link)  # the switch: one atomic rename
    fsync_dir(link.parent)
    for old in link.parent.glob(f"{link.name}.*"):
        if old != target and old.is_dir() and old.name[len(link.name) + 1 :].isdigit():
            shutil.rmtree(old, ignore_errors=True)
    return link


def play_episodes(
    env: Any, adapter: Any, choose: Any, seed: int, count: int, max_steps: int, **kwargs: Any
) -> list:
    """``count`` episodes of ``choose`` with seeds ``seed``, ``seed + 1``, ... (see
    :func:`similar_rl.harness.episodes.run`); ``env`` is closed after."""
    from similar_rl.harness.episodes import run

    try:
        return [run(env, adapter, choose, seed + i, max_steps, **kwargs) for i in range(count)]
    finally:
        env.close()


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.write_text(json.dumps(state, indent=2, sort_keys=True, default=str) + "\n")


def load_checkpoint(
    folder: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Load a folder written by :func:`save_checkpoint` into ``model`` (and ``optimizer``); return its state."""
    folder = Path(folder)
    weights, state_file = folder / WEIGHTS_NAME, folder / STATE_NAME
    if not weights.is_file() or not state_file.is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} is not a checkpoint folder: it needs {WEIGHTS_NAME} and {STATE_NAME}"
        )
    tensors = load_file(str(weights))
    state = json.loads(state_file.read_text())
    model_sd = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    result = model.load_state_dict(model_sd, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"checkpoint {str(folder)!r} does not match the policy: missing {result.missing_keys}, "
            f"unexpected {result.unexpected_keys} (were feature settings changed since it was saved?)"
        )
    if optimizer is not None and "optimizer_param_groups" in state:
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, slot = key.split(".", 2)
                slots.setdefault(int(idx), {})[slot] = value
        optimizer.load_state_dict({"state": slots, "param_groups": state["optimizer_param_groups"]})
    if restore_rng and "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    return state
