"""Stage 3 (optional, beyond the reference): end-to-end LoRA fine-tuning of the backbone with both losses.

The model engineer's hook adds PEFT LoRA adapters to the backbone (``model.enable_lora(...)``); this stage
then trains them (and, with ``lora_train_heads``, the experts and the gate) on

    loss = lora_rg_weight * L_RG + lora_bt_weight * L_BT

where ``L_BT`` is the Bradley-Terry loss of ``total`` on a batch of pairs and ``L_RG`` the experts' MSE on
every labelled step of the states those pairs touch (without pairs: random states, about ``lora_batch_pairs``
steps). Both go through one ``model.encode`` call (each state once, with all its children), with gradients.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from similar_rl.train.data import PairTable, StepTable
from similar_rl.train.stage1_ridge import expert_targets
from similar_rl.train.stage2_gate import cosine_schedule, optimizer_step, side_rows, side_scores

logger = logging.getLogger(__name__)


def enable_lora(model: Any, config: Any) -> list[torch.nn.Parameter]:
    """Add LoRA adapters through the model's hook; return the adapter parameters."""
    hook = getattr(model, "enable_lora", None) or getattr(model.backbone, "enable_lora", None)
    if hook is None:
        raise NotImplementedError(
            f"the {model.config.backbone!r} backbone has no LoRA hook (enable_lora); stage 3 needs a backbone "
            "with trainable transformer weights (backbone: hf or joint). Set lora: false to skip it"
        )
    before = {id(p) for p in model.parameters() if p.requires_grad}
    hook(
        r=config.lora_r,
        alpha=config.lora_alpha,
        dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
    )
    adapters = [p for p in model.backbone.parameters() if p.requires_grad and id(p) not in before]
    if not adapters:
        adapters = [
            p for n, p in model.backbone.named_parameters() if p.requires_grad and "lora" in n.lower()
        ]
    if not adapters:
        raise RuntimeError("enable_lora added no trainable parameters to the backbone")
    return adapters


def run_stage3(
    model: Any,
    steps: StepTable,
    pairs: PairTable,
    config: Any,
    accelerator: Any = None,
    log: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Fine-tune LoRA adapters (and optionally the heads) end to end. Returns the first and last losses."""
    if config.lora_steps == 0:
        return {}
    device = accelerator.device if accelerator is not None else model.device
    adapters = enable_lora(model, config)
    model.to(device)
    heads = [p for m in (model.experts, model.gate) if m is not None for p in m.parameters()]
    for p in heads:
        p.requires_grad_(config.lora_train_heads)
    params = [p for p in adapters + (heads if config.lora_train_heads else []) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lora_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(0, config.lora_steps))
    mc = model.config
    targets = expert_targets(steps.labels, mc.expert_names, mc.target_scales(), mc.total_weights)
    targets = torch.as_tensor(targets, dtype=torch.float32)
    use_rg = config.lora_rg_weight > 0 and len(steps.inputs) > 0
    use_bt = config.lora_bt_weight > 0 and len(pairs) > 0
    if not (use_rg or use_bt):
        raise ValueError("stage 3 has nothing to train on: no labelled steps for L_RG and no pairs for L_BT")
    rank = accelerator.process_index if accelerator is not None else 0
    n_proc = accelerator.num_processes if accelerator is not None else 1
    rng = np.random.default_rng(config.seed + 7 + 1000 * rank)
    ptr, flat = pairs.side_csr() if use_bt else (None, None)
    children: dict[str, list[int]] = {}  # state -> its labelled steps
    for i, inp in enumerate(steps.inputs):
        children.setdefault(inp.prompt_key, []).append(i)
    states = list(children)
    clear = getattr(model.backbone, "clear_cache", None)
    from tqdm.auto import tqdm

    model.train()
    history: list[float] = []
    bar = tqdm(range(config.lora_steps), desc="stage 3 (LoRA)", disable=not config.progress or rank != 0)
    for step in bar:
        if clear is not None:
            clear()
        loss = torch.zeros((), device=device)
        parts: dict[str, float] = {}
        rows = np.zeros(0, dtype=np.int64)
        if use_bt:
            chosen = rng.choice(len(pairs), min(config.lora_batch_pairs, len(pairs)), replace=False)
            sides = np.stack([2 * chosen, 2 * chosen + 1], axis=1).reshape(-1)
            rows = np.unique(side_rows(ptr, flat, sides)[0])
            keys = list(dict.fromkeys(pairs.inputs[i].prompt_key for i in rows))
        else:
            order = rng.permutation(len(states))
            counts = np.cumsum([len(children[states[g]]) for g in order])
            keys = [states[g] for g in order[: int(np.searchsorted(counts, config.lora_batch_pairs)) + 1]]
        idx = [i for k in keys for i in children.get(k, [])] if use_rg else []
        batch = [steps.inputs[i] for i in idx] + [pairs.inputs[i] for i in rows]
        out = model.head_outputs(*model.encode(batch))
        if idx:
            y, rewards = targets[idx].to(device), out["rewards"][: len(idx)]
            mask = torch.isfinite(y)
            rg = F.mse_loss(rewards[mask], y[mask]) if mask.any() else torch.zeros((), device=device)
            loss = loss + config.lora_rg_weight * rg
            parts["stage3/rg_loss"] = float(rg.detach())
        if use_bt:
            local = np.full(len(pairs.inputs), -1, dtype=np.int64)
            local[rows] = np.arange(len(rows))
            s = side_scores(out["total"][len(idx) :], ptr, local[flat], sides)
            bt = -F.logsigmoid(s[0::2] - s[1::2]).mean()
            loss = loss + config.lora_bt_weight * bt
            parts["stage3/bt_loss"] = float(bt.detach())
        optimizer_step(loss, optimizer, scheduler, params, accelerator, n_proc)
        history.append(float(loss.detach()))
        if (step + 1) % config.log_every == 0 or step + 1 == config.lora_steps:
            bar.set_postfix(loss=f"{history[-1]:.4f}")
            if log is not None:
                log({"stage3/loss": history[-1], "stage3/step": step + 1, **parts})
    for p in heads:
        p.requires_grad_(True)
    if clear is not None:
        clear()
    model.eval()
    k = max(1, len(history) // 5)
    result = {
        "first_loss": float(np.mean(history[:k])),
        "last_loss": float(np.mean(history[-k:])),
        "steps": len(history),
        "adapter_params": int(sum(p.numel() for p in adapters)),
    }
    logger.info(
        "stage 3: loss %.4f -> %.4f over %d steps", result["first_loss"], result["last_loss"], len(history)
    )
    return result
