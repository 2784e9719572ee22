"""``similar-rl collect``: MCTS-P collection of five-dimensional step labels into a dataset folder.

Examples::

    similar-rl collect toy/login-form toy/open-tab --seeds 0-9 -n 4 --out data/toy
    similar-rl collect --config configs/collect_miniwob.yaml --out data/miniwob --workers 2
    similar-rl collect --tasks tasks.txt --seeds 0,1,2 --policy heuristic --judge rule --out data/run1

Command-line values override the YAML config. Rerunning the same command on the same ``--out`` resumes it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from similar_rl.commands import fail
from similar_rl.harness.settings import add_dataclass_arguments

#: Short and historical option strings of CollectConfig fields.
_ALIASES = {
    "n_children": ("-n", "--children"),
    "n_calibration": ("--calibration",),
    "step_timeout_s": ("--step-timeout",),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from similar_rl.collect.config import CollectConfig

    parser.add_argument(
        "env_ids", nargs="*", metavar="ENV", help="env ids, e.g. miniwob/click-test-2 toy/login-form"
    )
    parser.add_argument("--tasks", help="file with one env id per line (added to the other env ids)")
    parser.add_argument("--config", help="YAML CollectConfig (see configs/collect_*.yaml); flags override it")
    parser.add_argument("--out", required=True, help="dataset folder (created, or resumed if it holds data)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", dest="json_out", help="also write the run summary to this JSON file")
    parser.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local process pool, or Ray actors (--workers of them; needs `pip install ray`)",
    )
    parser.add_argument(
        "--ray-address",
        help="Ray cluster address ('auto', 'ray://head:10001'); implies --backend ray (default: a local Ray)",
    )
    add_dataclass_arguments(
        parser.add_argument_group("CollectConfig fields"), CollectConfig, aliases=_ALIASES
    )


#: Options of the command itself; every other namespace entry is a CollectConfig field.
_COMMAND_OPTIONS = {"env_ids", "tasks", "config", "out", "no_progress", "json_out", "backend", "ray_address"}


def build_config(args: argparse.Namespace) -> Any:
    """The CollectConfig of the parsed arguments: the YAML, then the flags on top (``*_kwargs`` are merged)."""
    from similar_rl.collect.config import CollectConfig
    from similar_rl.collect.runner import tasks_from_file

    data = CollectConfig.from_yaml(args.config).to_dict() if args.config else {}
    fields = {k: v for k, v in vars(args).items() if k not in _COMMAND_OPTIONS}
    envs = [*fields.pop("envs", []), *args.env_ids]
    if args.tasks:
        envs += [e for e in tasks_from_file(args.tasks) if e not in envs]
    if envs:
        data["envs"] = envs
    for key, value in fields.items():
        data[key] = (
            {**data.get(key, {}), **value} if key.endswith("_kwargs") and isinstance(value, dict) else value
        )
    return CollectConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from similar_rl.collect.runner import collect

    try:
        cfg = build_config(args)
        if not cfg.envs:
            raise ValueError("no env ids: pass them as arguments, with --tasks FILE, or in the --config YAML")
    except (ValueError, OSError) as exc:
        return fail("collect", exc)
    if args.backend == "ray" or args.ray_address:
        from similar_rl.collect.distributed import collect_ray

        try:
            summary = collect_ray(cfg, args.out, address=args.ray_address, progress=not args.no_progress)
        except ImportError as exc:
            return fail("collect", exc)
    else:
        summary = collect(cfg, args.out, progress=not args.no_progress)
    print(f"dataset folder: {summary.out}")
    print(
        f"tasks: {summary.tasks} ({summary.skipped} already done; this run: {summary.ok} searched, "
        f"{summary.pruned} pruned, {summary.failed} failed{', stopped early' if summary.stopped_early else ''})"
    )
    print(f"step records: {summary.steps}   pairs: {summary.pairs}   env steps: {summary.env_steps}")
    for ptype, count in summary.pairs_per_type.items():
        print(f"  {ptype:<16} {count}")
    if summary.env_failures:
        print(f"env failures (retried or fatal): {summary.env_failures}; see failures.jsonl")
    if summary.failed_tasks:
        print(f"failed tasks (rerun to retry): {', '.join(summary.failed_tasks)}")
    print(f"time: {summary.seconds:.1f} s")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(summary.to_dict(), fh, indent=2)
    return 1 if summary.failed else 0
