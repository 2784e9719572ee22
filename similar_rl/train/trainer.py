"""Runs Triple-M end to end: load data, build the model, extract (cached) features, stages 1-3, save.

Everything runs through an ``accelerate.Accelerator`` (CPU, one or several GPUs). Outputs in ``out``: the
checkpoint (``model.save_pretrained``), ``train_config.yaml``, ``metrics.jsonl`` (one JSON object per event)
and ``train_summary.json`` (stage metrics, counts, timings, seed). ``similar-rl train --eval-data`` evaluates
after.

Example (CLI): ``similar-rl train --data runs/toy --out runs/model --config configs/train_default.yaml``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from similar_rl.harness.run_log import RunLogger
from similar_rl.train.config import TrainConfig
from similar_rl.train.data import InputFactory, build_pair_table, build_step_table, load_records

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its folder and the summary written to train_summary.json."""

    model: Any
    out: Path | None
    summary: dict[str, Any] = field(default_factory=dict)


def make_accelerator(config: TrainConfig) -> Any:
    from similar_rl._optional import require

    accelerate = require("accelerate", "Triple-M training")
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("TrainConfig.device is 'cuda' but no GPU is visible; set device: cpu or auto")
    return accelerate.Accelerator(cpu=config.device == "cpu", mixed_precision=config.mixed_precision)


def build_model(config: TrainConfig) -> Any:
    """The model to train: loaded from ``config.init_from`` or built from ``config.model``."""
    from similar_rl.model import SimilarConfig, SimilarRewardModel

    if config.init_from:
        if config.model:
            logger.warning(
                "init_from is set: the model fields in the config are ignored (%s)", sorted(config.model)
            )
        return SimilarRewardModel.from_pretrained(config.init_from)
    try:
        model_config = SimilarConfig.from_dict(dict(config.model))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"train config 'model': {exc}") from None
    return SimilarRewardModel.build(model_config)


def train(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    config: TrainConfig | None = None,
    model: Any = None,
) -> TrainResult:
    """Train a Similar reward model on a dataset folder (steps for stage 1, pairs for stages 2-3).

    ``out`` None writes nothing (tests, benchmarks); ``config`` defaults to :class:`TrainConfig`; ``model``:
    an already built model to train (overrides ``config.model``/``init_from``).
    """
    import torch
    from accelerate.utils import set_seed

    from similar_rl.train.features import extract_features
    from similar_rl.train.stage1_ridge import advantage_columns, run_stage1
    from similar_rl.train.stage2_gate import run_stage2

    config = config or TrainConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    set_seed(config.seed)
    accelerator = make_accelerator(config)
    out_path = None if out is None else Path(out)
    if out_path is not None and accelerator.is_main_process:
        out_path.mkdir(parents=True, exist_ok=True)
        (out_path / "metrics.jsonl").unlink(missing_ok=True)
        config.save_yaml(out_path / "train_config.yaml")
    metrics = RunLogger(
        out_path if accelerator.is_main_process else None,
        config.to_dict(),
        jsonl=True,
        wandb=config.wandb and accelerator.is_main_process,
        project=config.wandb_project,
    )
    try:
        steps, pairs, root = load_records(data)
        envs, tasks = set(config.exclude_envs), set(config.exclude_tasks)
        steps = [s for s in steps if s.env_id not in envs and s.task_id not in tasks]
        pairs = [p for p in pairs if p.env_id not in envs and p.task_id not in tasks]
        if config.max_pairs is not None and len(pairs) > config.max_pairs:
            keep = np.sort(
                np.random.default_rng(config.seed).choice(len(pairs), config.max_pairs, replace=False)
            )
            pairs = [pairs[i] for i in keep]
        model = build_model(config) if model is None else model
        if config.ridge_fit == "advantage":
            # Fail before encoding if the backbone cannot split state and action as asked.
            advantage_columns(model, config.ridge_action_blocks)
        model.to(accelerator.device)
        factory = InputFactory(root, use_images=bool(getattr(model.config, "use_image", True)))
        step_table = build_step_table(steps, factory)
        pair_table = build_pair_table(pairs, steps, factory, config.pair_types)
        timings["load_s"] = time.perf_counter() - t0
        counts = {
            "steps": len(step_table.inputs),
            "pairs": len(pair_table),
            "pairs_per_type": {t: pair_table.types.count(t) for t in sorted(set(pair_table.types))},
        }
        logger.info("training data: %s", counts)
        metrics.log({"event": "data", **counts})

        # Features of every distinct step (labelled steps and pair sides), once.
        t = time.perf_counter()
        distinct = {s.key: s for s in (*step_table.inputs, *pair_table.inputs)}  # equal keys: equal steps
        index = {key: i for i, key in enumerate(distinct)}
        x_all, z_all = extract_features(
            model,
            list(distinct.values()),
            batch_size=config.feature_batch_size,
            cache_dir=config.cache_dir,
            use_cache=config.use_cache,
            progress=config.progress and accelerator.is_main_process,
            accelerator=accelerator,
        )
        timings["features_s"] = time.perf_counter() - t
        step_rows = torch.as_tensor([index[s.key] for s in step_table.inputs], dtype=torch.long)
        pair_rows = torch.as_tensor([index[s.key] for s in pair_table.inputs], dtype=torch.long)
        metrics.log({"event": "features", "distinct_steps": len(distinct), "seconds": timings["features_s"]})

        summary: dict[str, Any] = {"counts": counts, "seed": config.seed}
        # Stage 1.
        t = time.perf_counter()
        if len(step_table.inputs) >= 2:
            summary["stage1"] = ridge = run_stage1(
                model,
                z_all[step_rows],
                step_table.labels,
                step_table.task_ids,
                config,
                states=[s.prompt_key for s in step_table.inputs],
            )
            metrics.log(
                {"event": "stage1", **{f"stage1/{k}/{m}": v for k, d in ridge.items() for m, v in d.items()}}
            )
        elif config.init_from:
            logger.warning(
                "no labelled steps in %s: stage 1 skipped, the experts of %s are kept", data, config.init_from
            )
        else:
            raise ValueError(
                f"{data} holds {len(step_table.inputs)} labelled step records; stage 1 (ridge experts) needs at least 2. "
                "Train on a dataset folder with steps.jsonl, or start from a trained model with init_from"
            )
        timings["stage1_s"] = time.perf_counter() - t
        # Stage 2.
        t = time.perf_counter()
        if len(pair_table):
            summary["stage2"] = run_stage2(
                model, x_all[pair_rows], z_all[pair_rows], pair_table, config, accelerator, metrics.log
            )
            metrics.log({"event": "stage2", **{f"stage2/{k}": v for k, v in summary["stage2"].items()}})
        else:
            logger.warning("no preference pairs of types %s: stage 2 (gate) skipped", config.pair_types)
        timings["stage2_s"] = time.perf_counter() - t
        # Stage 3.
        if config.lora:
            from similar_rl.train.stage3_lora import run_stage3

            t = time.perf_counter()
            summary["stage3"] = run_stage3(model, step_table, pair_table, config, accelerator, metrics.log)
            timings["stage3_s"] = time.perf_counter() - t
        model.eval()
        timings["total_s"] = time.perf_counter() - t0
        summary["timings"] = timings
        summary["pairs_per_second"] = len(pair_table) / timings["total_s"] if timings["total_s"] > 0 else None
        if out_path is not None and accelerator.is_main_process:
            model.save_pretrained(out_path)
            (out_path / "train_summary.json").write_text(json.dumps(summary, indent=2, default=float))
        metrics.log({"event": "done", **{f"time/{k}": v for k, v in timings.items()}})
        return TrainResult(model, out_path, summary)
    finally:
        metrics.close()
