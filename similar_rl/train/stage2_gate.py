"""Stage 2 of Triple-M (L_BT): train the gate with the Bradley-Terry loss on cached features, experts frozen.

Loss per pair: ``-log sigmoid(R(chosen) - R(rejected))`` with ``R`` the model's ``total`` (for a ``traj``
pair, the mean ``total`` over each trajectory's steps), over the pairs of ``config.pair_types``. AdamW, linear
warm-up then cosine decay (docs/method.md section 5). With several processes, gate gradients are averaged
across them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from similar_rl.train.data import PairTable

logger = logging.getLogger(__name__)


def side_rows(
    ptr: np.ndarray, flat: np.ndarray, sides: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step rows of ``sides`` (concatenated), the side position of each row, and each side's length."""
    starts = ptr[sides]
    lengths = ptr[sides + 1] - starts
    seg = np.repeat(np.arange(len(sides)), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return flat[np.repeat(starts, lengths) + offsets], seg, lengths


def side_scores(
    step_scores: torch.Tensor, ptr: np.ndarray, flat: np.ndarray, sides: np.ndarray
) -> torch.Tensor:
    """Mean of ``step_scores[flat[ptr[s]:ptr[s+1]]]`` for each side ``s`` in ``sides``.

    ``step_scores`` is indexed by step row. Example:
        >>> ptr, flat = np.array([0, 1, 3]), np.array([0, 1, 2])
        >>> side_scores(torch.tensor([1.0, 2.0, 4.0]), ptr, flat, np.array([1, 0])).tolist()
        [3.0, 1.0]
    """
    rows, seg, lengths = side_rows(ptr, flat, sides)
    device = step_scores.device
    seg, rows = torch.as_tensor(seg, device=device), torch.as_tensor(rows, device=device)
    sums = torch.zeros(len(sides), dtype=step_scores.dtype, device=device)
    sums = sums.index_add(0, seg, step_scores[rows])
    return sums / torch.as_tensor(lengths, dtype=step_scores.dtype, device=device)


def cosine_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``.

    Example:
        >>> f = cosine_schedule(0, 10)
        >>> f(0), round(f(5), 3), f(10)
        (1.0, 0.5, 0.0)
    """

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    params: list[torch.Tensor],
    accelerator: Any,
    n_proc: int,
) -> None:
    """Backpropagate ``loss``, average the gradients of ``params`` over ``n_proc`` processes, step the
    optimizer and the LR scheduler (shared by stage 2 and stage 3)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if n_proc > 1:
        for p in params:
            if p.grad is not None:
                p.grad = accelerator.reduce(p.grad, reduction="mean")
    optimizer.step()
    scheduler.step()


@torch.no_grad()
def pair_loss_and_accuracy(
    model: Any, x: torch.Tensor, z: torch.Tensor, table: PairTable
) -> tuple[float, float]:
    """Mean BT loss and accuracy (ties count 0.5) of the model's ``total`` over all pairs, in eval mode."""
    if len(table) == 0:
        return float("nan"), float("nan")
    was_training = model.training
    model.eval()
    totals = torch.cat(
        [model.head_outputs(x[i : i + 8192], z[i : i + 8192])["total"] for i in range(0, x.shape[0], 8192)]
    )
    model.train(was_training)
    ptr, flat = table.side_csr()
    s = side_scores(totals, ptr, flat, np.arange(2 * len(table)))
    diff = s[0::2] - s[1::2]
    accuracy = ((diff > 0).float() + 0.5 * (diff == 0).float()).mean()
    return float(-F.logsigmoid(diff).mean()), float(accuracy)


def run_stage2(
    model: Any,
    x: torch.Tensor,
    z: torch.Tensor,
    table: PairTable,
    config: Any,
    accelerator: Any = None,
    log: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Train ``model.gate`` on ``table`` (pairs over rows of ``x``/``z``). Returns start/end loss and accuracy.

    The experts are frozen (``requires_grad`` False during the stage, restored after). A single-objective
    model has no gate: the stage is skipped and an empty dict returned.
    """
    if getattr(model, "gate", None) is None:
        logger.info("stage 2 skipped: the model has no gate (single objective)")
        return {}
    if len(table) == 0:
        raise ValueError(
            "stage 2 needs preference pairs, but none of the requested pair types are in the data"
        )
    device = accelerator.device if accelerator is not None else model.device
    model.to(device)
    x, z = x.to(device), z.to(device)
    start_loss, start_acc = pair_loss_and_accuracy(model, x, z, table)
    gate_ids = {id(p) for p in model.gate.parameters()}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in gate_ids]
    for p in frozen:
        p.requires_grad_(False)
    params = [p for p in model.gate.parameters() if p.requires_grad]
    n_steps = gate_step_count(config, len(table))
    optimizer = torch.optim.AdamW(params, lr=config.gate_lr, weight_decay=config.gate_weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_schedule(config.gate_warmup_steps, n_steps)
    )
    n_proc = accelerator.num_processes if accelerator is not None else 1
    rank = accelerator.process_index if accelerator is not None else 0
    rng = np.random.default_rng(config.seed + 1000 * rank)
    ptr, flat = table.side_csr()
    n_pairs = len(table)
    batch = min(config.gate_batch_size, n_pairs)
    order, cursor = rng.permutation(n_pairs), 0
    from tqdm.auto import tqdm

    local = np.full(x.shape[0], -1, dtype=np.int64)  # step row -> row within the batch
    model.train()
    running, seen = 0.0, 0
    bar = tqdm(range(n_steps), desc="stage 2 (gate)", disable=not config.progress or rank != 0)
    try:
        for step in bar:
            if cursor + batch > n_pairs:
                order, cursor = rng.permutation(n_pairs), 0
            pairs = order[cursor : cursor + batch]
            cursor += batch
            sides = np.stack([2 * pairs, 2 * pairs + 1], axis=1).reshape(-1)
            rows = np.unique(side_rows(ptr, flat, sides)[0])
            local[rows] = np.arange(len(rows))
            idx = torch.as_tensor(rows, device=device)
            totals = model.head_outputs(x[idx], z[idx])["total"]
            s = side_scores(totals, ptr, local[flat], sides)
            loss = -F.logsigmoid(s[0::2] - s[1::2]).mean()
            optimizer_step(loss, optimizer, scheduler, params, accelerator, n_proc)
            running += float(loss.detach())
            seen += 1
            if (step + 1) % config.log_every == 0 or step + 1 == n_steps:
                metrics = {
                    "stage2/loss": running / seen,
                    "stage2/lr": scheduler.get_last_lr()[0],
                    "stage2/step": step + 1,
                }
                if model.gate.scale.requires_grad:
                    metrics["stage2/scale"] = float(model.gate.scale.detach())
                bar.set_postfix(loss=f"{running / seen:.4f}")
                if log is not None:
                    log(metrics)
                running, seen = 0.0, 0
    finally:
        bar.close()
        for p in frozen:
            p.requires_grad_(True)
    model.eval()
    end_loss, end_acc = pair_loss_and_accuracy(model, x, z, table)
    logger.info(
        "stage 2: BT loss %.4f -> %.4f, pair accuracy %.3f -> %.3f", start_loss, end_loss, start_acc, end_acc
    )
    return dict(start_loss=start_loss, end_loss=end_loss, start_accuracy=start_acc, end_accuracy=end_acc)


def gate_step_count(config: Any, n_pairs: int) -> int:
    """``gate_steps``, capped at ``gate_max_epochs`` passes over ``n_pairs`` pairs (at least one step).

    Example:
        >>> from similar_rl.train.config import TrainConfig
        >>> gate_step_count(TrainConfig(gate_steps=2000, gate_batch_size=1024, gate_max_epochs=20), 10_000)
        196
    """
    steps = config.gate_steps
    if config.gate_max_epochs is not None:
        batch = min(config.gate_batch_size, max(1, n_pairs))
        steps = min(steps, max(1, math.ceil(config.gate_max_epochs * n_pairs / batch)))
    return steps
