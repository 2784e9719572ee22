"""Cost of the six TRL reward functions (total + five dimensions) vs one, on the same GRPO-shaped batch.

A GRPO step calls every reward function in turn with the same batch. :func:`similar_rl.rewards.similar_reward_funcs`
makes the six share one batch cache, so the first call scores the batch and the other five reuse it. Settings, timed
round-robin on fresh batches (no state seen before, so no cache answers across repeats):

- ``one function``: ``similar_reward_funcs(model, dimensions=())`` -> ``[similar_total]`` (the baseline);
- ``six functions, shared``: ``similar_reward_funcs(model)``, all six called as TRL calls them;
- ``six functions, independent``: six single-key functions, each from its own ``similar_reward_funcs`` call (own
  Scorer, no shared batch cache) with the backbone's prompt cache cleared before each, i.e. what six separate
  reward models would cost.

Batch: ``--prompts`` toy-env states x ``--group`` completions each (TRL's B x G layout), with the ``instruction``,
``history``, ``observation_text`` and ``screenshot`` columns. Model: an untrained default-backbone model.

Run: ``.venv/bin/python benchmarks/reward_funcs_cost.py [--prompts 4] [--group 8] [--repeats 5]``.
Writes benchmarks/results/reward_funcs_cost.{json,md}. Target on 2-core CPUs: six shared <= 1.2x one.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from typing import Any

from _common import markdown_table, ratio, setup, toy_steps, write_results

from similar_rl.dimensions import SCORE_KEYS


def grpo_batch(prompts: int, group: int, seed0: int) -> dict[str, Any]:
    """TRL keyword arguments for ``prompts`` x ``group`` completions (fresh states for each ``seed0``)."""
    steps = toy_steps(prompts, group, seed0=seed0)
    return {
        "prompts": [
            f"Instruction: {s.instruction}\nScreen:\n{s.observation_text}\nAnswer with one action."
            for s in steps
        ],
        "completions": [f"I will do {s.action}" for s in steps],
        "instruction": [s.instruction for s in steps],
        "history": [list(s.history) for s in steps],
        "observation_text": [s.observation_text for s in steps],
        "screenshot": [s.screenshot for s in steps],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    info = setup(args.threads)

    from similar_rl.model import SimilarConfig, SimilarRewardModel
    from similar_rl.rewards import similar_reward_funcs

    model = SimilarRewardModel.build(SimilarConfig())
    settings = {
        "one function (similar_total)": lambda: similar_reward_funcs(model, dimensions=()),
        "six functions, shared batch cache": lambda: similar_reward_funcs(model),
        "six functions, independent": lambda: [
            similar_reward_funcs(model, dimensions=() if k == "total" else (k,), include_total=k == "total")[
                0
            ]
            for k in SCORE_KEYS
        ],
    }
    for fn in settings["six functions, shared batch cache"]():  # warm-up: lazy loads
        fn(**grpo_batch(1, 2, seed0=10_000))
    times: dict[str, list[float]] = {name: [] for name in settings}
    forwards: dict[str, int] = {}
    seeds = itertools.count(1)
    for _ in range(args.repeats):
        for name, make in settings.items():
            funcs = make()
            kwargs = grpo_batch(args.prompts, args.group, seed0=next(seeds))
            independent = "independent" in name
            start = time.perf_counter()
            for fn in funcs:
                if independent:
                    model.backbone.clear_cache()
                out = fn(**kwargs)
            times[name].append(time.perf_counter() - start)
            assert len(out) == args.prompts * args.group
            shared_scores = {id(f.batch_scores): f.batch_scores for f in funcs}.values()
            forwards[name] = sum(s.scorer.forward_calls for s in shared_scores)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = med["one function (similar_total)"]
    rows = [
        {
            "setting": name,
            "functions": len(settings[name]()),
            "model_calls_per_step": forwards[name],
            "median_s": med[name],
            "x_one": ratio(med[name], base),
        }
        for name in settings
    ]
    table = markdown_table(
        ["setting", "reward functions", "model calls per GRPO step", "median s per step", "x one function"],
        [
            [r["setting"], r["functions"], r["model_calls_per_step"], round(r["median_s"], 3), r["x_one"]]
            for r in rows
        ],
    )
    shared = rows[1]["x_one"]
    verdict = "met" if shared <= 1.2 else "NOT met"
    body = (
        f"GRPO batch: {args.prompts} prompts x {args.group} completions = {args.prompts * args.group} completions, "
        f"fresh states every repeat; median of {args.repeats} round-robin repeats. Untrained default-backbone "
        "model (MiniLM + EfficientNet-Lite0).\n\n"
        + table
        + f"\n\nTarget: six shared functions <= 1.2x one: **{verdict}** ({shared}x)."
    )
    write_results(
        "reward_funcs_cost",
        "Reward functions: total + five dimensions vs one function",
        body,
        {
            "prompts": args.prompts,
            "group": args.group,
            "repeats": args.repeats,
            "rows": rows,
            "target_met": shared <= 1.2,
        },
        info,
    )


if __name__ == "__main__":
    main()
