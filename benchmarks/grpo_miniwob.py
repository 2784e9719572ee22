"""GRPO arms with a real pretrained LM policy (SmolLM2-135M-Instruct) on MiniWoB++: does Similar help?

Arms, each evaluated greedily on the training families at unseen seeds and on held-out families:

- ``base``: the pretrained policy as it is;
- ``sft``: the supervised warm-up on the training folder's successful MCTS-P steps (agents/sft.py);
- ``sft_grpo_similar``: then GRPO with the five Similar dimensions as rewards (normalised within the group, then
  summed: ``multi_objective_aggregation: normalize_then_sum``);
- ``sft_grpo_env``: then GRPO with the env-verified reward only;
- ``sft_grpo_both``: then GRPO with both.

The GRPO arms start from the ``sft`` arm's adapter (``resume``), so the warm-up is trained once. Every arm is a
run folder under ``--runs``; an arm whose ``summary.json`` exists is not rerun (kill and rerun to resume).
Writes ``benchmarks/results/<out>.{json,md}``: ``{"arms": {"<arm>": {"success_rate": float, "train_families":
float, "heldout_families": float, "invalid_action_rate": float, "episodic_length": float, "seconds": float}},
"config": {...}}``.

    python benchmarks/grpo_miniwob.py --train-data data/v2_train            # about two hours on 2 cores
    python benchmarks/grpo_miniwob.py --smoke --out /tmp/grpo_smoke          # toy envs, tiny models: plumbing
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, machine_info, setup

ARMS = ("base", "sft", "sft_grpo_similar", "sft_grpo_env", "sft_grpo_both")
TRAIN_FAMILIES = ("click-button", "click-link", "click-tab", "enter-text", "login-user")
HELDOUT_FAMILIES = ("click-test-transfer", "click-dialog-2", "identify-shape", "click-tab-2-easy")
DIMS = ("helpfulness", "odds_of_success", "efficiency", "task_relevance", "coherence")


def arm_overrides(arm: str, sft_dir: Path) -> dict[str, Any]:
    """The settings that make ``arm`` (on top of the common ones)."""
    if arm == "base":
        return {"sft_steps": 0, "max_steps": 0}
    if arm == "sft":
        return {"max_steps": 0}
    similar = {d: 1.0 for d in DIMS}
    weights = {
        "sft_grpo_similar": (similar, False),
        "sft_grpo_env": ({"env": 1.0}, True),
        "sft_grpo_both": ({**similar, "env": 1.0}, True),
    }[arm]
    return {
        "sft_steps": 0,
        "resume": str(sft_dir),
        "reward_weights": weights[0],
        "env_reward": weights[1],
        "multi_objective_aggregation": "normalize_then_sum",
    }


def group_rate(summary: dict[str, Any], env_ids: list[str]) -> float:
    rates = [summary[f"eval/{e}/success_rate"] for e in env_ids if f"eval/{e}/success_rate" in summary]
    return sum(rates) / len(rates) if rates else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", default=str(ROOT / "configs/grpo_miniwob_smollm2.yaml"), help="common GRPO settings"
    )
    parser.add_argument(
        "--train-data", default="data/v2_train", help="MCTS-P folder: warm-up and GRPO states"
    )
    parser.add_argument(
        "--train-families", default=",".join(TRAIN_FAMILIES), help="evaluated at unseen seeds"
    )
    parser.add_argument("--heldout-families", default=",".join(HELDOUT_FAMILIES), help="never trained on")
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--grpo-steps", type=int, default=40)
    parser.add_argument("--num-states", type=int, default=160, help="GRPO prompts (states of --train-data)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="greedy episodes per evaluated family")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--runs", default="runs/grpo_miniwob", help="run folders (resumable)")
    parser.add_argument("--smoke", action="store_true", help="toy envs, tiny random policy and reward model")
    parser.add_argument(
        "--out", default="grpo_miniwob", help="result stem under benchmarks/results/, or a path"
    )
    args = parser.parse_args()
    machine = setup()
    logging.basicConfig(level=logging.WARNING)
    from similar_rl.agents.grpo import GRPOArgs, train
    from similar_rl.harness.settings import build_args, load_yaml

    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        **load_yaml(args.config),
        "states_from": "dataset",
        "dataset_dir": args.train_data,
        "num_states": args.num_states,
        "sft_dataset_dir": args.train_data,
        "sft_steps": args.sft_steps,
        "max_steps": args.grpo_steps,
        "eval_episodes": args.eval_episodes,
        "output_dir": str(runs),
        "track": False,
        "progress": False,
    }
    train_envs = [f"miniwob/{f}-v1" for f in args.train_families.split(",") if f]
    heldout_envs = [f"miniwob/{f}-v1" for f in args.heldout_families.split(",") if f]
    scorer = None
    if args.smoke:
        from similar_rl.collect.synthetic import build_toy_dataset
        from similar_rl.model import SimilarRewardModel
        from similar_rl.scoring import Scorer
        from similar_rl.testing import build_tiny_qwen2, tiny_default_config

        data = build_toy_dataset(
            runs / "toy_data", env_ids=("toy/click-button", "toy/login-form"), seeds=(0, 1)
        )
        train_envs, heldout_envs = ["toy/click-button"], ["toy/open-tab"]
        common.update(
            model_path=str(build_tiny_qwen2(runs / "tiny_policy")), dataset_dir=str(data), sft_dataset_dir=str(data),
            lora_target_modules="all-linear", max_completion_length=8, per_device_train_batch_size=4,
        )  # fmt: skip
        scorer = Scorer(SimilarRewardModel.build(tiny_default_config()), batch_size=8)
    common["eval_env_ids"] = train_envs + heldout_envs
    common["env_id"] = train_envs[0]
    results: dict[str, Any] = {}
    for arm in args.arms.split(","):
        summary_file = runs / arm / "summary.json"
        if not summary_file.is_file():
            settings = build_args(
                GRPOArgs, common, {**arm_overrides(arm, runs / "sft" / "final"), "run_name": arm}
            )
            start = time.perf_counter()
            summary = train(settings, scorer=scorer)
            summary["seconds"] = time.perf_counter() - start
            summary_file.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        summary = json.loads(summary_file.read_text())
        results[arm] = {
            "success_rate": summary["eval/success_rate"],
            "train_families": group_rate(summary, train_envs),
            "heldout_families": group_rate(summary, heldout_envs),
            "invalid_action_rate": summary["eval/invalid_action_rate"],
            "episodic_length": summary["eval/episodic_length"],
            "seconds": summary.get("seconds"),
        }
        print(arm, json.dumps(results[arm]), flush=True)
    report = {
        "machine": machine_info() | {"at_start": machine},
        "config": {
            **{k: v for k, v in common.items() if k != "model_path"},
            "model_path": common.get("model_path"),
        },
        "train_envs": train_envs,
        "heldout_envs": heldout_envs,
        "arms": results,
    }
    lines = [
        "# GRPO arms with a pretrained LM policy on MiniWoB++",
        "",
        f"Policy `{common.get('model_path')}`, states and warm-up from `{common['dataset_dir']}`, "
        f"{args.sft_steps} warm-up steps, {args.grpo_steps} GRPO steps, {args.eval_episodes} greedy episodes per "
        f"family at unseen seeds. Training families: {', '.join(train_envs)}; held-out: {', '.join(heldout_envs)}.",
        "",
        "| arm | success (all) | training families | held-out families | invalid actions | episode length | time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, row in results.items():
        seconds = "n/a" if row["seconds"] is None else f"{row['seconds']:.0f}"
        lines.append(
            f"| {arm} | {100 * row['success_rate']:.1f}% | {100 * row['train_families']:.1f}% | "
            f"{100 * row['heldout_families']:.1f}% | {100 * row['invalid_action_rate']:.1f}% | "
            f"{row['episodic_length']:.1f} | {seconds} |"
        )
    out = Path(args.out) if "/" in args.out else RESULTS / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
