"""``similar-rl eval``: pairwise accuracy per type on a dataset folder or an SRMEval-layout CSV.

Prints a table (accuracy in %, one column per pair type) and, with ``--json FILE``, writes
``{"accuracy": {...}, "count": {...}, "ties": ..., "baselines": {...}}``.

Example:
    similar-rl eval --model runs/model --data runs/toy-heldout --baselines --json runs/eval.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from similar_rl.commands import fail


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="default",
        help="trained model folder, or 'default' for the shipped model (default)",
    )
    parser.add_argument("--data", required=True, help="dataset folder or SRMEval CSV with the pairs")
    parser.add_argument(
        "--baselines", action="store_true", help="also score random, rule_judge, text_similarity and no_gate"
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also evaluate another model folder on the same pairs, e.g. --compare single_head=runs/single",
    )
    parser.add_argument(
        "--ties", choices=["half", "wrong"], default="half", help="a tie counts 0.5 (half) or 0"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    parser.add_argument("--batch-size", type=int, default=32, help="steps per model.encode call")
    parser.add_argument("--cache-dir", help="feature cache folder")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    parser.add_argument("--json", help="write the report to this JSON file")
    parser.add_argument(
        "--clear-margin",
        type=float,
        metavar="Z",
        help="only pairs whose children's odds of success differ by more than Z pooled standard errors "
        "(rollout-count aware; judge and traj pairs are kept)",
    )
    parser.add_argument(
        "--encoding",
        help="text encoding of an SRMEval CSV (default: UTF-8 with or without BOM, else GB18030)",
    )


def run(args: argparse.Namespace) -> int:
    from similar_rl.evaluation import evaluate, format_table, report_rows
    from similar_rl.model import load_model

    compare = [item.partition("=") for item in args.compare]
    for item, (name, sep, folder) in zip(args.compare, compare, strict=True):
        if not sep or not name or not folder:
            raise SystemExit(f"--compare expects NAME=DIR, got {item!r}")
    try:
        model = load_model(args.model)
        extra = {name: load_model(folder) for name, _, folder in compare}
    except (FileNotFoundError, ValueError) as exc:
        return fail("eval", exc)
    report = evaluate(
        model,
        args.data,
        baselines=args.baselines,
        extra_models=extra,
        ties=args.ties,
        seed=args.seed,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=True,
        encoding=args.encoding,
        clear_margin=args.clear_margin,
    )
    print(format_table(report_rows(report), report.get("count")))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        print(f"wrote {path}")
    return 0
