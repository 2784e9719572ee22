"""``similar-rl train``: Triple-M training of a Similar reward model on a dataset folder.

Example:
    similar-rl train --data runs/toy --eval-data runs/toy-heldout --out runs/model --config configs/train_default.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Options of the command itself; every other namespace entry is a TrainConfig field.
_COMMAND_OPTIONS = {"data", "eval_data", "out", "config", "set", "no_cache", "no_progress"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from similar_rl.harness.settings import add_dataclass_arguments
    from similar_rl.train.config import TrainConfig

    parser.add_argument(
        "--data", required=True, help="training dataset folder (steps.jsonl, pairs.jsonl, images/)"
    )
    parser.add_argument("--eval-data", help="held-out dataset folder or SRMEval CSV evaluated after training")
    parser.add_argument("--out", required=True, help="output folder of the trained model (created)")
    parser.add_argument("--config", help="train config YAML (see configs/train_default.yaml)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config option (VALUE parsed as YAML), e.g. --set model.use_image=false",
    )
    # model is a mapping (set its keys with --set model.KEY=VALUE); use_cache and progress have --no-* flags
    add_dataclass_arguments(
        parser.add_argument_group("TrainConfig fields"),
        TrainConfig,
        exclude=("model", "use_cache", "progress"),
    )


def _apply_sets(data: dict, sets: list[str]) -> dict:
    import yaml

    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        target = data
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"--set {key}: {part!r} is not a mapping")
        target[leaf] = yaml.safe_load(raw)
    return data


def run(args: argparse.Namespace) -> int:
    import yaml

    from similar_rl.train.config import TrainConfig
    from similar_rl.train.trainer import train

    data = (yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}) if args.config else {}
    if not isinstance(data, dict):
        raise SystemExit(f"{args.config}: a train config must be a mapping of options")
    data = _apply_sets(data, args.set)
    overrides = {k: v for k, v in vars(args).items() if k not in _COMMAND_OPTIONS}
    overrides.update(use_cache=False if args.no_cache else None, progress=False if args.no_progress else None)
    try:
        config = TrainConfig.from_dict(data, **overrides)
    except ValueError as exc:
        raise SystemExit(f"similar-rl train: {args.config or 'config'}: {exc}") from None
    result = train(args.data, args.out, config)
    summary = result.summary
    print(f"saved the model to {result.out}")
    if "stage2" in summary:
        s2 = summary["stage2"]
        print(
            f"stage 2: BT loss {s2['start_loss']:.4f} -> {s2['end_loss']:.4f}, "
            f"train pair accuracy {s2['start_accuracy']:.3f} -> {s2['end_accuracy']:.3f}"
        )
    print("timings (s): " + json.dumps({k: round(v, 1) for k, v in summary["timings"].items()}))
    if args.eval_data:
        from similar_rl.evaluation import evaluate, format_table

        report = evaluate(
            result.model, args.eval_data, cache_dir=config.cache_dir, use_cache=config.use_cache
        )
        (Path(args.out) / "eval.json").write_text(json.dumps(report, indent=2))
        print(format_table({"similar": report["accuracy"]}, report["count"]))
    return 0
