"""K-fold cross-validation of Triple-M recipes on one training folder, to choose a recipe without a held-out set.

``--split family`` (default) splits the env ids (task families) of the folder into K folds and trains each fold's
model on the other families (``exclude_envs``): it measures transfer to unseen families. ``--split task`` splits
the task ids (one env id and seed) instead, so every family is seen in training but no fold task is
(``exclude_tasks``): the task split of docs/method.md. Each fold is scored on its pairs beside the zero-shot
text-similarity baseline on the same pairs. Features are cached, so each fold costs stage 1 + stage 2 only.

Usage:
    python benchmarks/cv.py --data data/default_train --config configs/train_cpu_default.yaml \\
        --variant "plain:" --variant "small_alpha: ridge_alphas=[0.01, 0.1]" [--folds 5] [--split task]

A variant is ``NAME: key=value; key=value`` with YAML values; ``model.<field>=value`` sets a model field.
Writes benchmarks/results/<split>_cv.json and <split>_cv.md (``--out`` changes the stem).
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


def fold_table(records: tuple, key: str, fold: set[str], use_images: bool):
    """PairTable of the pairs among ``records`` = (steps, pairs, screenshot root) whose ``key`` attribute
    (``env_id`` or ``task_id``) is in ``fold``."""
    from similar_rl.train.data import InputFactory, build_pair_table

    steps, pairs, root = records
    return build_pair_table(
        [p for p in pairs if getattr(p, key) in fold],
        [s for s in steps if getattr(s, key) in fold],
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
    parser.add_argument(
        "--split", choices=["family", "task"], default="family", help="what a fold leaves out of training"
    )
    parser.add_argument("--out", default=None, help="result file stem under benchmarks/results/ (<split>_cv)")
    args = parser.parse_args()
    machine = setup()
    logging.basicConfig(level=logging.WARNING)
    from similar_rl.evaluation import evaluate, format_table, pairwise_accuracy, text_similarity_scores
    from similar_rl.train.config import TrainConfig
    from similar_rl.train.data import load_records
    from similar_rl.train.trainer import train

    variants = [parse_variant(v) for v in args.variant] or [("config", {})]
    names = [name for name, _ in variants]
    if len(set(names)) != len(names) or "text_similarity" in names:
        parser.error(f"variant names must be distinct and not 'text_similarity', got {names}")
    reserved = {"exclude_envs", "exclude_tasks", "cache_dir", "progress"}
    for name, overrides in variants:
        if reserved & set(overrides):
            parser.error(
                f"variant {name!r} sets {sorted(reserved & set(overrides))}, which this script sets per fold"
            )
    base = TrainConfig.from_yaml(args.config)
    records = load_records(args.data)
    key, exclude = ("env_id", "exclude_envs") if args.split == "family" else ("task_id", "exclude_tasks")
    groups = sorted({getattr(s, key) for s in records[0]})
    if len(groups) < args.folds:
        parser.error(f"{args.data} has {len(groups)} {key}s, fewer than --folds {args.folds}")
    order = np.random.default_rng(args.seed).permutation(len(groups))
    folds = [sorted(groups[i] for i in order[k :: args.folds]) for k in range(args.folds)]
    hits: dict[str, dict[str, list[float]]] = {}  # variant -> type -> [correct, count]

    def add(name: str, acc: dict, cnt: dict) -> None:
        for ptype, n in cnt.items():
            if ptype != "average":
                slot = hits.setdefault(name, {}).setdefault(ptype, [0.0, 0])
                slot[0] += acc[ptype] * n
                slot[1] += n

    t0 = time.perf_counter()
    for k, fold in enumerate(folds):
        table = fold_table(records, key, set(fold), use_images=True)
        add("text_similarity", *pairwise_accuracy(text_similarity_scores(table), table))
        for name, overrides in variants:
            fields = {**overrides, "model": {**base.model, **overrides.get("model", {})}}
            config = TrainConfig.from_yaml(
                args.config, **fields, **{exclude: fold}, cache_dir=args.cache_dir, progress=False
            )
            model = train(args.data, None, config).model
            own = table if model.config.use_image else fold_table(records, key, set(fold), use_images=False)
            report = evaluate(model, own, cache_dir=args.cache_dir)
            add(name, report["accuracy"], report["count"])
        shown = ", ".join(fold) if args.split == "family" else f"{len(fold)} tasks"
        print(f"fold {k + 1}/{args.folds} done ({time.perf_counter() - t0:.0f} s): {shown}", flush=True)
    shares = {name: {t: c / n for t, (c, n) in per.items()} for name, per in hits.items()}
    rows = {name: {t: 100 * v for t, v in row.items()} for name, row in shares.items()}
    counts = {t: n for t, (_, n) in hits["text_similarity"].items()}
    plural = {"family": "families", "task": "tasks"}[args.split]
    lines = [
        f"# {args.split.capitalize()}-wise {args.folds}-fold CV of Triple-M recipes",
        "",
        f"data `{args.data}` ({len(groups)} {key}s), config `{args.config}`, fold seed {args.seed}. "
        f"Accuracy in % over all folds' pairs (ties count 0.5); each fold's {plural} are never trained on.",
        "",
        format_table(shares, counts),
    ]
    lines += ["", "Variants: " + "; ".join(f"`{n}` = {json.dumps(o)}" for n, o in variants)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.out or f"{args.split}_cv"
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{stem}.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "split": args.split,
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
