"""Prompt once, score many: cost of scoring G candidate actions of one state with the default backbone.

Compares, in one process (ratios only; absolute times on a shared CPU are noise):
- ``one``: 1 candidate of a fresh state (prompt side computed),
- ``group``: G candidates of a fresh state (prompt side computed once),
- ``group_warm``: G candidates of a state seen before (prompt side from the LRU),
- ``naive_joint``: the usual cross-encoder layout, MiniLM over (state text + action) for each of the G candidates
  (batched, 256 tokens) plus the image encoder per candidate.

Run: ``.venv/bin/python benchmarks/model_prompt_reuse.py [--group 8] [--repeats 5] [--threads 1]``; writes
benchmarks/results/model_prompt_reuse.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from similar_rl.model import SimilarConfig, SimilarRewardModel
from similar_rl.model.backbones.default import image_to_tensor
from similar_rl.types import StepInput


def make_state(seed: int) -> StepInput:
    rng = np.random.default_rng(seed)
    names = ["Username", "Password", "Remember me", "Submit", "Cancel", "Help", "Home", "Search", "Settings"]
    lines = [f'[{i + 1}] {"input_text" if i < 2 else "button"} "{n} {seed}"' for i, n in enumerate(names)]
    lines += [
        f'[{20 + i}] div "Paragraph {i} of the page with some filler text number {seed}"' for i in range(12)
    ]
    screenshot = rng.integers(0, 255, (210, 160, 3), dtype=np.uint8)
    return StepInput(
        f"Log in as user{seed} with password hunter{seed} and press Submit",
        "click(ref=4)",
        [f'type(ref=1, text="user{seed}")'],
        screenshot,
        "\n".join(lines),
    )


def candidates(state: StepInput, group: int) -> list[StepInput]:
    pool = [
        "click(ref=4)",
        "click(ref=5)",
        f'type(ref=2, text="hunter{group}")',
        "click(ref=3)",
        "noop()",
        'press(key="Enter")',
        "click(ref=21)",
        "click_xy(x=10, y=20)",
        "click(ref=6)",
        "click(ref=7)",
    ]
    return [state.with_action(pool[i % len(pool)]) for i in range(group)]


def naive_joint(model: SimilarRewardModel, steps: list[StepInput]) -> None:
    backbone = model.backbone
    texts = [f"{s.instruction}\n{'; '.join(s.history)}\n{s.observation_text}\n{s.action}" for s in steps]
    with torch.no_grad():
        backbone._minilm(texts, 256)
        pixels = torch.stack([image_to_tensor(s.screenshot) for s in steps])
        backbone.image_model.extract_features(pixels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1 is far faster on a busy shared CPU)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "model_prompt_reuse.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = SimilarRewardModel(SimilarConfig())
    timings: dict[str, list[float]] = {"one": [], "group": [], "group_warm": [], "naive_joint": []}
    model.score_steps(candidates(make_state(999), args.group))  # warm-up
    for r in range(args.repeats):
        for name in timings:
            state = make_state(r * 10 + len(name))
            steps = candidates(state, args.group)
            model.backbone.clear_cache()
            if name == "group_warm":
                model.score_steps(steps[:1])
            start = time.perf_counter()
            if name == "one":
                model.score_steps(steps[:1])
            elif name in ("group", "group_warm"):
                model.score_steps(steps)
            else:
                naive_joint(model, steps)
            timings[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in timings.items()}
    result = {
        "group": args.group,
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "median_seconds": med,
        "ratio_group_vs_one": med["group"] / med["one"],
        "ratio_naive_vs_group": med["naive_joint"] / med["group"],
        "ratio_group_warm_vs_one": med["group_warm"] / med["one"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
