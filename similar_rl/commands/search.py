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
import dataclasses
import json
import logging
from pathlib import Path

from similar_rl.commands import fail
from similar_rl.data.dataset import atomic_write_text
from similar_rl.harness.settings import add_dataclass_arguments
from similar_rl.search_job import SearchSettings, run_search, search_settings

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env_ids", nargs="*", metavar="ENV", help="env ids (same as --envs)")
    parser.add_argument(
        "--config", help="YAML with any of the settings below (see configs/search_miniwob.yaml)"
    )
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: torch's; 1 on a busy machine)"
    )
    parser.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_dataclass_arguments(parser.add_argument_group("search settings"), SearchSettings)


def load_settings(args: argparse.Namespace) -> SearchSettings:
    """The command's settings: defaults, then the --config YAML, then the flags (see :func:`search_settings`)."""
    overrides = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(SearchSettings) if hasattr(args, f.name)
    }
    if args.env_ids:
        overrides["envs"] = [*overrides.get("envs", []), *args.env_ids]
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

        model = load_model(settings.model)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        return fail("search", exc)
    result = run_search(settings, model=model, progress=not args.no_progress)
    label = f"{settings.method} N={settings.n}"
    print(results_table(result, base_label=settings.policy, scaled_label=label))
    if args.json_out:
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(result, indent=2), fsync=False)
        print(f"wrote {path}")
    return 0
