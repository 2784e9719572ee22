"""Int8 dynamic quantisation of the shipped model's MiniLM: scoring cost and how far the scores move.

Two copies of ``load_default_model()``; in one, ``torch.ao.quantization.quantize_dynamic`` turns MiniLM's Linear
layers into int8. Both score the same toy-env states one call per state, with no cache, timed alternately
(medians of ``--repeats``). **Baseline**: the float32 model in the same process. Agreement: the largest change of
``total``, beside the spread of the float32 scores, and the share of state pairs whose ``total`` order is kept.

Run: ``.venv/bin/python benchmarks/int8_minilm.py [--n 96] [--repeats 3]``. Writes results/int8_minilm.{json,md}.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _common import markdown_table, ratio, setup, time_interleaved, toy_steps, write_results


def totals(model: Any, steps: list[Any]) -> np.ndarray:
    """``total`` of each step, one Scorer call per step, caches emptied first."""
    from similar_rl.scoring import Scorer

    model.backbone.clear_cache()
    scorer = Scorer(model, batch_size=1, cache_size=0)
    return np.array([scorer.score([step])[0]["total"] for step in steps])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=96, help="toy-env states")
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    info = setup()
    import torch

    from similar_rl.model import load_default_model

    steps = toy_steps(opts.n)
    models = {"float32": load_default_model(), "int8 MiniLM": load_default_model()}
    encoder = models["int8 MiniLM"].backbone
    encoder.text_model = torch.ao.quantization.quantize_dynamic(
        encoder.text_model, {torch.nn.Linear}, torch.qint8
    )
    base, quant = (totals(m, steps) for m in models.values())  # also the warm-up
    times = time_interleaved({k: (lambda m=m: totals(m, steps)) for k, m in models.items()}, opts.repeats)
    i, j = np.triu_indices(len(steps), 1)
    kept = float(np.mean(np.sign(base[i] - base[j]) == np.sign(quant[i] - quant[j])))
    ms = {k: t["median"] / len(steps) * 1e3 for k, t in times.items()}
    data = {
        "ms_per_state": ms,
        "speedup": ratio(ms["float32"], ms["int8 MiniLM"]),
        "max_abs_total_change": float(np.max(np.abs(base - quant))),
        "float32_total_std": float(np.std(base)),
        "pair_order_kept": kept,
        "pairs": len(i),
    }
    body = markdown_table(
        [
            "model",
            "ms per state",
            "speed-up",
            "max abs change of total",
            "std of float32 total",
            "pair order kept",
        ],
        [
            ["float32", ms["float32"], 1.0, 0.0, data["float32_total_std"], 1.0],
            ["int8 MiniLM", ms["int8 MiniLM"], data["speedup"], data["max_abs_total_change"], "", kept],
        ],
    )
    write_results("int8_minilm", "Int8 dynamic quantisation of MiniLM", body, data, info)


if __name__ == "__main__":
    main()
