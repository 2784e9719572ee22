"""Run logging for every job: one place that starts W&B runs and TensorBoard writers, and one run logger.

:func:`start_wandb` is the package's only ``wandb.init`` (offline, quiet; with ``reuse`` it joins an active
run); :class:`RunLogger` writes a job's metrics to ``metrics.jsonl``, TensorBoard and W&B.

Example:
    >>> import json, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with RunLogger(folder, {"lr": 0.1}, jsonl=True, tensorboard=False) as log:
    ...     log.log({"event": "stage2", "loss": 0.5}, step=3)
    >>> row = json.loads(open(f"{folder}/metrics.jsonl").read())
    >>> row["loss"], row["step"], row["event"]
    (0.5, 3, 'stage2')
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from similar_rl._optional import require


def start_wandb(
    *,
    project: str,
    name: str | None = None,
    folder: str | os.PathLike[str] | None = None,
    config: Any = None,
    mode: str | None = None,
    reuse: bool = False,
    feature: str = "W&B logging",
    **init: Any,
) -> tuple[Any, bool]:
    """Start (or, with ``reuse``, join) a W&B run; returns ``(run, started_here)``.

    Args:
        project, name, config: as ``wandb.init`` takes them.
        folder: where the run's files go (created).
        mode: ``"offline"`` (no connection), ``"online"`` or ``"disabled"``; default ``$WANDB_MODE`` or offline.
        reuse: join the active run if there is one.
        feature: what needs W&B, named in the error when it is not installed.
        init: more ``wandb.init`` keywords (tags, entity, group...).
    """
    wandb = require("wandb", feature)
    if reuse and wandb.run is not None:
        return wandb.run, False
    os.environ.setdefault("WANDB_MODE", mode or "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    run = wandb.init(
        project=project,
        name=name,
        dir=None if folder is None else str(folder),
        config=config,
        mode=mode or os.environ["WANDB_MODE"],
        reinit="finish_previous",
        **init,
    )
    return run, True


def tensorboard_writer(folder: str | os.PathLike[str], feature: str = "TensorBoard logging") -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``folder``."""
    require("tensorboard", feature)
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder))


class RunLogger:
    """A job's metrics to ``<folder>/metrics.jsonl``, TensorBoard (``<folder>/tb``) and W&B, each where asked.

    Args:
        folder: the run's output folder (None: no files; W&B, if on, goes to its default place).
        config: the run's settings (recorded in TensorBoard and W&B).
        jsonl, tensorboard, wandb: append every row to ``metrics.jsonl``; write its numbers as TensorBoard
            scalars (rows logged with a ``step``); log its numbers to a W&B run (offline by default).
        project / name / wandb_mode: the W&B run's project, name and mode.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str] | None,
        config: Mapping[str, Any] | None = None,
        *,
        jsonl: bool = False,
        tensorboard: bool = False,
        wandb: bool = False,
        project: str = "similar-rl",
        name: str | None = None,
        wandb_mode: str | None = None,
    ) -> None:
        self.folder = None if folder is None else Path(folder)
        self.path = self.folder / "metrics.jsonl" if jsonl and self.folder is not None else None
        self.start = time.time()
        self.writer = None
        self.wandb_run = None
        config = dict(config or {})
        if tensorboard and self.folder is not None:
            self.writer = tensorboard_writer(self.folder / "tb")
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")
        if wandb:
            self.wandb_run, _ = start_wandb(
                project=project, name=name, folder=self.folder, config=config, mode=wandb_mode
            )

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log one row: all of it to the jsonl file, its numbers to TensorBoard (at ``step``) and W&B."""
        numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if self.path is not None:
            row = {"time_s": round(time.time() - self.start, 3), **({} if step is None else {"step": step})}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({**row, **metrics}, default=float) + "\n")
        if self.writer is not None and step is not None:
            for key, value in numbers.items():
                self.writer.add_scalar(key, value, step)
        if self.wandb_run is not None:
            if step is None:
                self.wandb_run.log(numbers)
            else:
                self.wandb_run.log({**numbers, "global_step": step}, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
