"""Cost of scoring G candidate actions of one state vs one action (prompt once), against naive joint encoding.

For G = 1, 4, 8, 16 candidates of ONE fresh toy-env state (screenshot + DOM text + one previous action):

- ``prompt-once`` (the model's path): ``model.score_steps(G steps)``; the state side (instruction, history, DOM
  text, screenshot) is encoded once and only the G short action phrases are encoded per candidate.
- ``naive joint`` (the baseline): what a cross-encoder reward model does: every (state, action) pair encoded as one
  text (instruction + history + DOM text + action, MiniLM, up to 256 tokens, batched over the G pairs) plus the
  screenshot through EfficientNet-Lite0 once per pair.
- For the tiny VLM (``hf`` backbone, Qwen2-VL): ``prompt-once`` = ``backbone.encode`` (one prefill of the state,
  its KV cache reused by the G continuations) vs ``backbone.encode_uncached`` (one full prompt + action forward per
  candidate, i.e. naive joint encoding with the same network).

Caches are cleared before every timed call and every repeat uses a state never seen before. Settings are timed
round-robin; medians of ``--repeats``.

Run: ``.venv/bin/python benchmarks/candidates_cost.py [--groups 1 4 8 16] [--repeats 5]``.
Writes benchmarks/results/candidates_cost.{json,md}. Target on 2-core CPUs: G=8 <= 1.5x one candidate (default model).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from _common import markdown_table, ratio, setup, toy_steps, write_results


def naive_joint_default(model: Any, steps: list[Any]) -> None:
    """Joint encoding of each (state, action) pair with the default backbone's own encoders."""
    from similar_rl.model.backbones.default import image_to_tensor

    backbone = model.backbone
    texts = [
        f"{s.instruction}\nprevious actions: {'; '.join(s.history)}\n{s.observation_text or ''}\naction: {s.action}"
        for s in steps
    ]
    with torch.inference_mode():
        backbone._minilm(texts, 256)
        size = backbone.options["image_size"]
        pixels = torch.stack([image_to_tensor(s.screenshot, size) for s in steps])
        backbone.image_model.extract_features(pixels)


def prompt_once(model: Any, steps: list[Any]) -> None:
    with torch.inference_mode():
        model.score_steps(steps)


def naive_joint_hf(model: Any, steps: list[Any]) -> None:
    with torch.inference_mode():
        model.scores_from_features(*model.backbone.encode_uncached(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-vlm", action="store_true")
    args = parser.parse_args()
    info = setup(args.threads)

    from similar_rl.model import SimilarConfig, SimilarRewardModel
    from similar_rl.testing import build_tiny_qwen2_vl

    models: dict[str, tuple[Any, Callable[[Any, list[Any]], None], str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models["default (MiniLM + EfficientNet-Lite0)"] = (
            SimilarRewardModel.build(SimilarConfig()),
            naive_joint_default,
            "naive joint: MiniLM(state + action) + EfficientNet per pair",
        )
        if not args.skip_vlm:
            path = build_tiny_qwen2_vl(f"{tmp}/tiny_qwen2_vl")
            cfg = SimilarConfig(backbone="hf", backbone_path=str(path), gate_hidden=64, gate_layers=2)
            models["tiny VLM (hf, Qwen2-VL)"] = (
                SimilarRewardModel.build(cfg),
                naive_joint_hf,
                "naive joint: full prompt + action forward per pair (encode_uncached)",
            )
        seeds = itertools.count(1)
        rows: list[dict[str, Any]] = []
        for name, (model, naive, naive_label) in models.items():
            warm = toy_steps(1, 2, seed0=50_000)
            prompt_once(model, warm)
            naive(model, warm)
            times: dict[tuple[str, int], list[float]] = {}
            for _ in range(args.repeats):
                for g in args.groups:
                    for method, fn in (("prompt-once", prompt_once), ("naive", naive)):
                        steps = toy_steps(1, g, seed0=next(seeds))
                        model.backbone.clear_cache()
                        start = time.perf_counter()
                        fn(model, steps)
                        times.setdefault((method, g), []).append(time.perf_counter() - start)
            med = {k: statistics.median(v) for k, v in times.items()}
            one = med[("prompt-once", args.groups[0])]
            naive_one = med[("naive", args.groups[0])]
            for g in args.groups:
                rows.append(
                    {
                        "model": name,
                        "G": g,
                        "prompt_once_ms": 1000 * med[("prompt-once", g)],
                        "prompt_once_x_one": ratio(med[("prompt-once", g)], one),
                        "naive_ms": 1000 * med[("naive", g)],
                        "naive_x_one": ratio(med[("naive", g)], naive_one),
                        "naive_x_prompt_once": ratio(med[("naive", g)], med[("prompt-once", g)]),
                        "naive_label": naive_label,
                    }
                )
    table = markdown_table(
        [
            "model",
            "G",
            "prompt-once ms",
            "prompt-once x G=1",
            "naive joint ms",
            "naive x its G=1",
            "naive / prompt-once",
        ],
        [
            [
                r["model"],
                r["G"],
                round(r["prompt_once_ms"], 1),
                r["prompt_once_x_one"],
                round(r["naive_ms"], 1),
                r["naive_x_one"],
                r["naive_x_prompt_once"],
            ]
            for r in rows
        ],
    )
    g8 = [r for r in rows if r["G"] == 8 and r["model"].startswith("default")]
    verdict = ""
    if g8:
        met = g8[0]["prompt_once_x_one"] <= 1.5
        verdict = (
            f"\n\nTarget (default model): G=8 <= 1.5x one candidate: **{'met' if met else 'NOT met'}** "
            f"({g8[0]['prompt_once_x_one']}x)."
        )
    baselines = "; ".join(sorted({f"{r['model']}: {r['naive_label']}" for r in rows}))
    body = (
        f"One fresh toy-env state per call (caches cleared); median of {args.repeats} round-robin repeats. "
        f"Baselines: {baselines}.\n\n" + table + verdict
    )
    write_results(
        "candidates_cost",
        "Scoring G candidate actions of one state: prompt once vs naive joint encoding",
        body,
        {"groups": args.groups, "repeats": args.repeats, "rows": rows},
        info,
    )


if __name__ == "__main__":
    main()
