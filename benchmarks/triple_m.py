"""Triple-M benchmark: train one or several recipes (backbones), evaluate each, its three ablations and the
baselines on held-out sets; training time and scoring cost per recipe; feature-extraction and training time
against the number of pairs.

Usage (rerunnable; features are cached, so a rerun skips encoding):
    python benchmarks/triple_m.py --train DATA_TRAIN --heldout DATA_HELDOUT [DATA_HELDOUT2 ...] [--gate-steps 2000] \
        [--scale 1000,10000]
    python benchmarks/triple_m.py --train DATA_TRAIN --heldout H1 H2 --out backbones \
        --recipe frozen=configs/train_cpu_default.yaml --recipe joint=configs/train_joint.yaml \
        --recipe smollm2=configs/train_smollm2.yaml              # the backbone comparison
    python benchmarks/triple_m.py --toy   # builds small toy datasets (split by task family) and runs on them

Writes benchmarks/results/<out>.json and <out>.md (default ``triple_m``; one table per held-out folder, a row per
recipe and per recipe's ablation, then the baselines). Scoring cost: milliseconds per state to score all its
candidates on the first held-out set, as a ratio to the first recipe's, measured in the same process. Held-out
folders must hold other tasks than the training folder: other seeds of its families (the task split) or other
families.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

ABLATIONS = {
    "without_history": {"use_history": False},
    "single_objective": {"single_objective": True},
    "text_only": {"use_image": False},
}


def scoring_ms_per_state(model, heldout: str, states: int = 20) -> float:
    """Wall milliseconds per state to score every candidate of ``states`` held-out states (one call per state)."""
    from collections import defaultdict

    from similar_rl.train.data import InputFactory, load_records

    steps, _, root = load_records(heldout)
    factory = InputFactory(root, use_images=bool(model.config.use_image))
    groups: dict[str, list] = defaultdict(list)
    for rec in steps:
        groups[rec.node_id].append(factory.from_step(rec))
    chosen = list(groups.values())[:states]
    clear = getattr(model.backbone, "clear_cache", None)
    if clear is not None:
        clear()
    model.score_steps(chosen[0])  # warm-up: lazy loads
    start = time.perf_counter()
    for group in chosen:
        model.score_steps(group)
    return 1000 * (time.perf_counter() - start) / len(chosen)


def _train(train_dir, model_fields, args, out=None, max_pairs=None):
    from similar_rl.train.config import TrainConfig
    from similar_rl.train.trainer import train

    config = TrainConfig.from_yaml(
        args.config,
        model={**TrainConfig.from_yaml(args.config).model, **model_fields},
        gate_steps=args.gate_steps,
        gate_max_epochs=args.gate_max_epochs,
        cache_dir=args.cache_dir,
        max_pairs=max_pairs,
        seed=args.seed,
        progress=False,
    )
    return train(train_dir, out, config)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", help="training dataset folder")
    parser.add_argument("--heldout", nargs="+", help="held-out dataset folder(s) (other tasks or families)")
    parser.add_argument(
        "--toy", action="store_true", help="build toy datasets (train: 3 families, held out: 1)"
    )
    parser.add_argument("--toy-seeds", type=int, default=8, help="seeds per family with --toy")
    parser.add_argument("--config", default="configs/train_default.yaml", help="the recipe when no --recipe")
    parser.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="NAME=CONFIG",
        help="a recipe to compare (repeatable)",
    )
    parser.add_argument("--out", default="triple_m", help="result file stem under benchmarks/results/")
    parser.add_argument("--gate-steps", type=int, default=None, help="override the config's gate_steps")
    parser.add_argument("--gate-max-epochs", type=float, default=None)
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: the user cache)")
    parser.add_argument("--scale", default="", help="comma-separated pair counts for the time-vs-pairs table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ablations", action="store_true")
    parser.add_argument(
        "--save-model", default=None, help="also save the first recipe's trained model to this folder"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from similar_rl.evaluation import evaluate, format_table

    if args.toy:
        from similar_rl.collect.synthetic import build_toy_dataset

        root = Path(tempfile.mkdtemp(prefix="triple_m_"))
        args.train = str(
            build_toy_dataset(
                root / "train",
                ["toy/click-button", "toy/login-form", "toy/checkboxes"],
                range(args.toy_seeds),
            )
        )
        args.heldout = [str(build_toy_dataset(root / "heldout", ["toy/open-tab"], range(args.toy_seeds)))]
    if not args.train or not args.heldout:
        parser.error("give --train and --heldout dataset folders, or --toy")
    recipes = [tuple(r.split("=", 1)) for r in args.recipe] or [("similar", args.config)]
    if any(len(r) != 2 for r in recipes) or len({n for n, _ in recipes}) != len(recipes):
        parser.error("--recipe takes distinct NAME=CONFIG values")
    result: dict = {"train": args.train, "heldout": args.heldout, "recipes": dict(recipes), "seed": args.seed}
    rows: dict[str, dict[str, dict]] = {h: {} for h in args.heldout}
    counts: dict[str, dict] = {}
    result["recipe_runs"] = {}
    for i, (name, config) in enumerate(recipes):
        recipe_args = argparse.Namespace(**{**vars(args), "config": config})
        t = time.perf_counter()
        main_run = _train(args.train, {}, recipe_args, out=args.save_model if i == 0 else None)
        run = {"train_summary": main_run.summary, "train_seconds": time.perf_counter() - t}
        extra = {}
        if not args.skip_ablations:
            extra = {abl: _train(args.train, fields, recipe_args).model for abl, fields in ABLATIONS.items()}
        for heldout in args.heldout:
            report = evaluate(
                main_run.model,
                heldout,
                baselines=True if i == 0 else ["no_gate"],
                extra_models=extra,
                cache_dir=args.cache_dir,
            )
            counts.setdefault(heldout, report.get("count"))
            own = {"no_gate", *ABLATIONS}
            rows[heldout][name] = report["accuracy"]
            for base, row in report.get("baselines", {}).items():
                key = f"{name}/{base}" if base in own else base
                rows[heldout][key] = row["accuracy"]
        run["scoring_ms_per_state"] = scoring_ms_per_state(main_run.model, args.heldout[0])
        result["recipe_runs"][name] = run
    first = result["recipe_runs"][recipes[0][0]]["scoring_ms_per_state"]
    for run in result["recipe_runs"].values():
        run["scoring_cost_ratio"] = run["scoring_ms_per_state"] / first
    # baselines last, after every recipe's rows
    for heldout, table in rows.items():
        mine = [k for k in table if k.split("/")[0] in dict(recipes)]
        rows[heldout] = {k: table[k] for k in [*mine, *(k for k in table if k not in mine)]}
    result["eval"] = rows
    result["count"] = counts
    scale_rows = []
    for n in [int(v) for v in args.scale.split(",") if v.strip()]:
        cache = Path(tempfile.mkdtemp(prefix="triple_m_cache_"))
        for attempt in ("cold", "cached"):  # the second run reads the features from the cache
            t = time.perf_counter()
            run = _train(
                args.train, {}, argparse.Namespace(**{**vars(args), "cache_dir": str(cache)}), max_pairs=n
            )
            total = time.perf_counter() - t
            timings = run.summary["timings"]
            pairs = run.summary["counts"]["pairs"]
            scale_rows.append(
                {
                    "pairs": pairs,
                    "cache": attempt,
                    "features_s": timings["features_s"],
                    "stage1_s": timings["stage1_s"],
                    "stage2_s": timings["stage2_s"],
                    "total_s": total,
                    "pairs_per_s": pairs / total,
                }
            )
        shutil.rmtree(cache, ignore_errors=True)
    result["scale"] = scale_rows
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2, default=float))
    lines = [
        "# Triple-M on held-out sets",
        "",
        f"train: `{args.train}`, recipes {', '.join(f'`{n}` = `{c}`' for n, c in recipes)}, seed {args.seed}. "
        "Accuracy in % (ties count 0.5). `<recipe>/no_gate` = the same experts with fixed total weights; "
        "`<recipe>/single_objective` = one head on total, no gate; `without_history`, `text_only`: the other "
        "ablations.",
        "",
        "| recipe | train time (s) | scoring ms per state (all its candidates) | scoring cost vs first |",
        "|---|---|---|---|",
    ]
    for name, run in result["recipe_runs"].items():
        lines.append(
            f"| {name} | {run['train_seconds']:.0f} | {run['scoring_ms_per_state']:.1f} | "
            f"{run['scoring_cost_ratio']:.2f}x |"
        )
    for heldout, table in rows.items():
        lines += ["", f"## Held out: `{heldout}`", "", format_table(table, counts[heldout])]
    if scale_rows:
        lines += [
            "",
            "## Time vs number of pairs",
            "",
            "| pairs | cache | features s | stage 1 s | stage 2 s | total s | pairs/s |",
        ]
        lines.append("|---|---|---|---|---|---|---|")
        for r in scale_rows:
            lines.append(
                f"| {r['pairs']} | {r['cache']} | {r['features_s']:.1f} | {r['stage1_s']:.1f} | {r['stage2_s']:.1f} | "
                f"{r['total_s']:.1f} | {r['pairs_per_s']:.1f} |"
            )
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
