"""Family-wise cross-validation of Triple-M recipes on one training folder, to choose a recipe without a held-out set.

The env ids (task families) of the folder are split into K folds; for each fold the model is trained on the
other families (``exclude_envs``) and scored on the fold's pairs, beside the zero-shot text-similarity baseline on
the same pairs. Features are cached, so each fold costs stage 1 + stage 2 only.

Usage:
    python benchmarks/family_cv.py --data data/default_train --config configs/train_cpu_default.yaml \\
        --variant "plain:" --variant "small_alpha: ridge_alphas=[0.01, 0.1]" [--folds 5]

A variant is ``NAME: key=value; key=value`` with YAML values; ``model.<field>=value`` sets a model field.
Writes benchmarks/results/family_cv.json and family_cv.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
from _common import RESULTS, setup


def parse_variant(text: str) -> tuple[str, dict]:
    """``"name: a=1; model.b=[2]"`` -> ``("name", {"a": 1, "model": {"b": [2]}})``."""
    import yaml

    name, _, rest = text.partition(":")
    overrides: dict = {}
    for item in filter(None, (part.strip() for part in rest.split(";"))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"variant {text!r}: {item!r} is not key=value")
        key, parsed = key.strip(), yaml.safe_load(value)
        if key.startswith("model."):
            overrides.setdefault("model", {})[key.removeprefix("model.")] = parsed
        else:
            overrides[key] = parsed
    return name.strip(), overrides


def fold_table(records: tuple, envs: set[str], use_images: bool):
    """PairTable of the pairs of ``envs`` among ``records`` = (steps, pairs, screenshot root)."""
    from similar_rl.train.data import InputFactory, build_pair_table

    steps, pairs, root = records
    return build_pair_table(
        [p for p in pairs if p.env_id in envs],
        [s for s in steps if s.env_id in envs],
        InputFactory(root, use_images=use_images),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="training dataset folder")
    parser.add_argument("--config", default="configs/train_cpu_default.yaml")
    parser.add_argument("--variant", action="append", default=[], help="NAME: key=value; ... (repeatable)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: the user cache)")
    parser.add_argument("--out", default="family_cv", help="result file stem under benchmarks/results/")
    args = parser.parse_args()
    machine = setup()
    logging.basicConfig(level=logging.WARNING)
    from similar_rl.evaluation import evaluate, format_table, pairwise_accuracy, text_similarity_scores
    from similar_rl.train.config import TrainConfig
    from similar_rl.train.data import load_records
    from similar_rl.train.trainer import train

    variants = [parse_variant(v) for v in args.variant] or [("config", {})]
    base = TrainConfig.from_yaml(args.config)
    records = load_records(args.data)
    families = sorted({s.env_id for s in records[0]})
    if len(families) < args.folds:
        parser.error(f"{args.data} has {len(families)} env ids, fewer than --folds {args.folds}")
    order = np.random.default_rng(args.seed).permutation(len(families))
    folds = [sorted(families[i] for i in order[k :: args.folds]) for k in range(args.folds)]
    hits: dict[str, dict[str, list[float]]] = {}  # variant -> type -> [correct, count]

    def add(name: str, acc: dict, cnt: dict) -> None:
        for ptype, n in cnt.items():
            if ptype != "average":
                slot = hits.setdefault(name, {}).setdefault(ptype, [0.0, 0])
                slot[0] += acc[ptype] * n
                slot[1] += n

    t0 = time.perf_counter()
    for k, fold in enumerate(folds):
        table = fold_table(records, set(fold), use_images=True)
        add("text_similarity", *pairwise_accuracy(text_similarity_scores(table), table))
        for name, overrides in variants:
            fields = {**overrides, "model": {**base.model, **overrides.get("model", {})}}
            config = TrainConfig.from_yaml(
                args.config, **fields, exclude_envs=fold, cache_dir=args.cache_dir, progress=False
            )
            model = train(args.data, None, config).model
            own = table if model.config.use_image else fold_table(records, set(fold), use_images=False)
            report = evaluate(model, own, cache_dir=args.cache_dir)
            add(name, report["accuracy"], report["count"])
        print(
            f"fold {k + 1}/{args.folds} done ({time.perf_counter() - t0:.0f} s): {', '.join(fold)}",
            flush=True,
        )
    shares = {name: {t: c / n for t, (c, n) in per.items()} for name, per in hits.items()}
    rows = {name: {t: 100 * v for t, v in row.items()} for name, row in shares.items()}
    counts = {t: n for t, (_, n) in hits["text_similarity"].items()}
    lines = [
        f"# Family-wise {args.folds}-fold CV of Triple-M recipes",
        "",
        f"data `{args.data}` ({len(families)} env ids), config `{args.config}`, fold seed {args.seed}. "
        "Accuracy in % over all folds' pairs (ties count 0.5); each fold's families are never trained on.",
        "",
        format_table(shares, counts),
    ]
    lines += ["", "Variants: " + "; ".join(f"`{n}` = {json.dumps(o)}" for n, o in variants)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "folds": folds,
                "variants": dict(variants),
                "accuracy": rows,
                "count": counts,
                "seconds": time.perf_counter() - t0,
            },
            indent=2,
        )
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
