"""``similar-rl search``: best-of-N / reward-guided action selection on an env, success with and without.

Examples::

    similar-rl search --envs miniwob/click-button-v1 miniwob/focus-text-2-v1 --seeds 0-29 --policy random \\
        --n 5 --method best_of_n --model default --json runs/search.json
    similar-rl search --config configs/search_miniwob.yaml --model models/similar --method tree --depth 2 --beam 2
    similar-rl search --envs toy/login-form --seeds 0-9 --policy heuristic --policy-kwargs '{"temperature": 2}' \\
        --model DIR

Both arms (the base policy alone, and the policy scaled by the reward model) play the same envs and seeds. The
command prints a table (success rate, mean steps and wall time per env and overall) and with ``--json`` writes
``{"base": {...}, "scaled": {...}, "per_env": {...}, "delta": {...}, "config": {...}}``. Flags override
``--config``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from similar_rl.harness.settings import parse_json_dict, parse_seeds
from similar_rl.search_job import DEFAULTS, METHODS, run_search, search_settings

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--envs", nargs="+", help="env ids, e.g. miniwob/click-button-v1 toy/login-form")
    parser.add_argument("env_ids", nargs="*", metavar="ENV", help="env ids (same as --envs)")
    parser.add_argument(
        "--config", help="YAML with any of the settings below (see configs/search_miniwob.yaml)"
    )
    parser.add_argument("--seeds", type=parse_seeds, help="env seeds: '0-29' or '1,3,7' (default 0-29)")
    parser.add_argument("--policy", help="base policy: random, heuristic, hf (default random)")
    parser.add_argument(
        "--policy-kwargs", type=parse_json_dict, help="policy options as JSON, e.g. '{\"temperature\": 2.0}'"
    )
    parser.add_argument("--n", type=int, help="candidates sampled per step (default 5)")
    parser.add_argument(
        "--method", choices=METHODS, help="best_of_n (default) or tree (reward-guided beam search)"
    )
    parser.add_argument("--depth", type=int, help="tree: lookahead levels (default 2)")
    parser.add_argument("--beam", type=int, help="tree: branches kept per level (default 2)")
    parser.add_argument(
        "--objective",
        help="what to maximise: total (default), a dimension name, or JSON weights like '{\"helpfulness\": 1}'",
    )
    parser.add_argument(
        "--use-env-reward",
        action="store_true",
        default=None,
        help="tree: let lookahead branches that end the episode use the env's reward (off by default: a real "
        "agent sees no reward at test time; this gives a simulator-assisted upper bound)",
    )
    parser.add_argument("--model", help="reward model: a checkpoint folder, or 'default' (the shipped model)")
    parser.add_argument("--max-steps", type=int, help="step budget per episode (default 20)")
    parser.add_argument("--env-kwargs", type=parse_json_dict, help="make_env options as JSON")
    parser.add_argument("--seed", type=int, help="random seed of the policies' sampling (default 0)")
    parser.add_argument("--batch-size", type=int, help="scorer batch size (default 32)")
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: torch's; 1 on a busy machine)"
    )
    parser.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The command's settings: defaults, then the --config YAML, then the flags (see :func:`search_settings`)."""
    overrides = {key: getattr(args, key, None) for key in DEFAULTS}
    positional = list(getattr(args, "env_ids", None) or [])
    if positional:
        overrides["envs"] = [*(args.envs or []), *positional]
    return search_settings(args.config, overrides)


def run(args: argparse.Namespace) -> int:
    from similar_rl.search import results_table

    try:
        settings = load_settings(args)
        if args.threads is not None:
            import torch

            if args.threads < 1:
                raise ValueError(f"--threads must be a positive integer, got {args.threads}")
            torch.set_num_threads(args.threads)
        from similar_rl.model import load_model

        model = load_model(settings["model"])
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"similar-rl search: {exc}", file=sys.stderr)
        return 2
    result = run_search(settings, model=model, progress=not args.no_progress)
    label = f"{settings['method']} N={settings['n']}"
    print(results_table(result, base_label=settings["policy"], scaled_label=label))
    if args.json_out:
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2), encoding="utf-8")
        tmp.replace(path)
        print(f"wrote {path}")
    return 0
