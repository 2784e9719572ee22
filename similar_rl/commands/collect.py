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
import sys
from typing import Any

from similar_rl.harness.settings import parse_json_dict, parse_seeds

#: CLI flag destination -> CollectConfig field.
_OVERRIDES = {
    "seeds": "seeds",
    "children": "n_children",
    "calibration": "n_calibration",
    "rollouts_per_child": "rollouts_per_child",
    "max_steps": "max_steps",
    "max_depth": "max_depth",
    "depth_margin": "depth_margin",
    "search": "search",
    "uct_iterations": "uct_iterations",
    "exploration": "exploration",
    "policy": "policy",
    "judge": "judge",
    "workers": "workers",
    "seed": "seed",
    "max_retries": "max_retries",
    "step_timeout": "step_timeout_s",
    "max_tasks": "max_tasks",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("envs", nargs="*", help="env ids, e.g. miniwob/click-test-2 toy/login-form")
    parser.add_argument(
        "--envs",
        nargs="+",
        default=[],
        dest="env_options",
        metavar="ENV",
        help="env ids (same as the positionals)",
    )
    parser.add_argument("--tasks", help="file with one env id per line (added to the positional env ids)")
    parser.add_argument("--config", help="YAML CollectConfig (see configs/collect_*.yaml); flags override it")
    parser.add_argument("--out", required=True, help="dataset folder (created, or resumed if it holds data)")
    parser.add_argument("--seeds", type=parse_seeds, help="env seeds: '0-9' or '1,3,7' (default 0)")
    parser.add_argument("-n", "--children", type=int, help="N: children per node (default 5)")
    parser.add_argument("--calibration", type=int, help="calibration episodes for L0 (default N)")
    parser.add_argument("--rollouts-per-child", type=int, help="k: rollouts per child (default 1)")
    parser.add_argument("--max-steps", type=int, help="step budget of an episode (default 20)")
    parser.add_argument("--max-depth", type=int, help="hard depth cap (default: ceil(L0) + depth margin)")
    parser.add_argument("--depth-margin", type=int, help="depth cap = ceil(L0) + this (default 1)")
    parser.add_argument(
        "--search", choices=["greedy", "uct"], help="greedy MCTS-P schedule or UCT (default greedy)"
    )
    parser.add_argument("--uct-iterations", type=int, help="uct: expansions per task (default 8)")
    parser.add_argument("--exploration", type=float, help="uct: exploration constant (default 1.0)")
    parser.add_argument("--policy", help="policy name: heuristic, random, hf (default heuristic)")
    parser.add_argument(
        "--policy-kwargs", type=parse_json_dict, help="policy options as JSON, e.g. '{\"temperature\": 0.5}'"
    )
    parser.add_argument("--judge", help="judge name: rule, openai, local_vlm (default rule)")
    parser.add_argument("--judge-kwargs", type=parse_json_dict, help="judge options as JSON")
    parser.add_argument("--env-kwargs", type=parse_json_dict, help="make_env options as JSON")
    parser.add_argument("--workers", type=int, help="parallel env worker processes (default 1)")
    parser.add_argument("--seed", type=int, help="base random seed (default 0)")
    parser.add_argument("--max-retries", type=int, help="retries of a failing env operation (default 2)")
    parser.add_argument("--step-timeout", type=float, help="seconds before an env operation counts as hung")
    parser.add_argument(
        "--max-tasks", type=int, help="stop after this many newly finished tasks (rerun resumes)"
    )
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


def build_config(args: argparse.Namespace) -> Any:
    """The CollectConfig of the parsed arguments (YAML first, then the flags on top)."""
    from similar_rl.collect.config import CollectConfig
    from similar_rl.collect.runner import tasks_from_file

    data = CollectConfig.from_yaml(args.config).to_dict() if args.config else {}
    envs = [*(args.envs or []), *args.env_options]
    if args.tasks:
        envs += [e for e in tasks_from_file(args.tasks) if e not in envs]
    if envs:
        data["envs"] = envs
    for dest, key in _OVERRIDES.items():
        value = getattr(args, dest)
        if value is not None:
            data[key] = value
    for dest in ("policy_kwargs", "judge_kwargs", "env_kwargs"):
        value = getattr(args, dest)
        if value is not None:
            data[dest] = {**data.get(dest, {}), **value}
    return CollectConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from similar_rl.collect.runner import collect

    try:
        cfg = build_config(args)
        if not cfg.envs:
            raise ValueError("no env ids: pass them as arguments, with --tasks FILE, or in the --config YAML")
    except (ValueError, OSError) as exc:
        print(f"similar-rl collect: {exc}", file=sys.stderr)
        return 2
    if args.backend == "ray" or args.ray_address:
        from similar_rl.collect.distributed import collect_ray

        try:
            summary = collect_ray(cfg, args.out, address=args.ray_address, progress=not args.no_progress)
        except ImportError as exc:
            print(f"similar-rl collect: {exc}", file=sys.stderr)
            return 2
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
