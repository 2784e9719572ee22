"""Supervised warm-up of an LM policy on the successful steps of an MCTS-P collection (TRL ``SFTTrainer`` + LoRA).

A pretrained chat model does not write the action grammar zero-shot (SmolLM2-135M-Instruct answers in prose), so
GRPO with it starts from all-invalid completions and learns nothing. The warm-up teaches the format and a first
policy: from each labelled state of a dataset folder (an MCTS-P node) it keeps the child whose rollouts succeeded
most often, when that rate reaches ``sft_min_success``, and trains the policy to answer the state's prompt (the
same prompt GRPO and evaluation use) with that action. Only the completion tokens carry the loss.

:func:`warm_up` returns the policy with its trained LoRA adapter; GRPO then goes on training that adapter.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def sft_rows(folder: str | Path, min_success: float = 1.0, limit: int | None = None) -> list[dict[str, Any]]:
    """One row per state of ``folder`` whose best child's rollout success is at least ``min_success``.

    A row holds the state's columns (instruction, observation text, history, env id, seed) and ``action``, the
    child with the highest rollout success (ties: the higher ``total`` label, then the first collected).

    Raises:
        ValueError: when no state qualifies (names the folder and the threshold).
    """
    from similar_rl.agents.grpo import state_key, state_row
    from similar_rl.data.dataset import DatasetReader
    from similar_rl.types import GUIState

    best: dict[str, Any] = {}
    for rec in DatasetReader(folder).steps():
        if rec.rollout_success is None:
            continue
        node = state_key(rec)
        held = best.get(node)
        if held is None or (rec.rollout_success, rec.total) > (held.rollout_success, held.total):
            best[node] = rec
    rows = [
        {**state_row(GUIState(rec.instruction, observation_text=rec.observation_text), rec.history, rec.env_id,
                     rec.seed), "action": rec.action}
        for rec in best.values()
        if rec.rollout_success >= min_success
    ][:limit]  # fmt: skip
    if not rows:
        raise ValueError(
            f"no state of {str(folder)!r} has a child with rollout success >= {min_success}; lower "
            "sft_min_success or collect on families the policy solves"
        )
    return rows


def sft_dataset(rows: list[dict[str, Any]], args: Any) -> Any:
    """A prompt-completion ``datasets.Dataset``: the policy's chat prompt of each state and its action."""
    from datasets import Dataset

    from similar_rl.agents.grpo import messages_for
    from similar_rl.types import GUIState

    records = []
    for row in rows:
        state = GUIState(row["instruction"], observation_text=row["observation_text"])
        completion = [{"role": "assistant", "content": row["action"]}]
        records.append({"prompt": messages_for(state, row["history"], args), "completion": completion})
    return Dataset.from_list(records)


def warm_up(
    model: Any, processing_class: Any, args: Any, run_dir: Path, peft_config: Any, report_to: list[str]
) -> tuple[Any, dict[str, Any]]:
    """Train ``model`` for ``args.sft_steps`` steps on :func:`sft_rows` of ``args.sft_dataset_dir``.

    Returns the trained model (a PEFT model when ``peft_config`` is given) and a summary (examples, steps, first
    and last loss, seconds).
    """
    import time

    import torch
    from trl import SFTConfig, SFTTrainer

    rows = sft_rows(args.sft_dataset_dir, args.sft_min_success, args.sft_max_examples)
    logger.info("supervised warm-up on %d states of %s", len(rows), args.sft_dataset_dir)
    config = SFTConfig(
        output_dir=str(run_dir / "sft"),
        max_steps=args.sft_steps,
        learning_rate=args.sft_learning_rate,
        per_device_train_batch_size=args.per_device_train_batch_size,
        max_length=args.sft_max_length,
        completion_only_loss=True,
        logging_steps=1,
        save_strategy="no",
        report_to=report_to or "none",
        seed=args.seed,
        bf16=args.bf16,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not args.progress,
    )
    start = time.perf_counter()
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=sft_dataset(rows, args),
        processing_class=processing_class,
        peft_config=peft_config,
    )
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "examples": len(rows),
        "steps": int(trainer.state.global_step),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "seconds": time.perf_counter() - start,
    }
    return trainer.model, summary
