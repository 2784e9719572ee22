"""Triple-M benchmark: train the default backbone, evaluate it, the baselines and the three ablations on held-out
tasks; plus feature-extraction and training time against the number of pairs.

Usage (rerunnable; features are cached, so a rerun skips encoding):
    python benchmarks/triple_m.py --train DATA_TRAIN --heldout DATA_HELDOUT [DATA_HELDOUT2 ...] [--gate-steps 2000] \
        [--scale 1000,10000]
    python benchmarks/triple_m.py --toy   # builds small toy datasets (split by task family) and runs on them

Writes benchmarks/results/triple_m.json and triple_m.md (one table per held-out folder). Held-out folders must
hold other tasks than the training folder: other seeds of its families (the task split) or other families.
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
    parser.add_argument("--config", default="configs/train_default.yaml")
    parser.add_argument("--gate-steps", type=int, default=None, help="override the config's gate_steps")
    parser.add_argument("--gate-max-epochs", type=float, default=None)
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: the user cache)")
    parser.add_argument("--scale", default="", help="comma-separated pair counts for the time-vs-pairs table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ablations", action="store_true")
    parser.add_argument(
        "--save-model", default=None, help="also save the trained default model to this folder"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from similar_rl.evaluation import evaluate, format_table, report_rows

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
    result: dict = {"train": args.train, "heldout": args.heldout, "config": args.config, "seed": args.seed}
    t = time.perf_counter()
    main_run = _train(args.train, {}, args, out=args.save_model)
    result["train_summary"] = main_run.summary
    result["train_seconds"] = time.perf_counter() - t
    single = None
    extra = {}
    if not args.skip_ablations:
        for name, fields in ABLATIONS.items():
            run = _train(args.train, fields, args)
            extra[name] = run.model
            if name == "single_objective":
                single = run.model
    reports = {}
    for heldout in args.heldout:
        report = evaluate(
            main_run.model, heldout, baselines=True, extra_models=extra, cache_dir=args.cache_dir
        )
        if single is not None:
            report["baselines"]["single_head"] = report["baselines"]["single_objective"]
        reports[heldout] = report
    result["eval"] = reports
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
    (RESULTS / "triple_m.json").write_text(json.dumps(result, indent=2, default=float))
    lines = [
        "# Triple-M on held-out tasks",
        "",
        f"train: `{args.train}`, config `{args.config}`, seed {args.seed}. "
        "Accuracy in % (ties count 0.5). `no_gate` = the same experts with fixed total weights; "
        "`single_head` = the single-objective ablation (one head on total, no gate).",
    ]
    for heldout, report in reports.items():
        lines += ["", f"## Held out: `{heldout}`", "", format_table(report_rows(report), report.get("count"))]
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
    (RESULTS / "triple_m.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
