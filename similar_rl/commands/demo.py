"""``similar-rl demo``: the main job on the embedded default model (the README's first command).

1. a few MiniWoB++ episodes through ``SimilarRewardWrapper``, each step printed with its five scores and total;
2. the base policy vs best-of-N with the model on held-out families (table + JSON);
3. a short PPO run with dense Similar rewards (success curve);
4. an offline W&B run and ``report.md`` with PNG plots under ``runs/demo-<timestamp>`` (the path is printed).

Examples::

    similar-rl demo                              # defaults from configs/demo.yaml, ~5 minutes on 2 cores
    similar-rl demo --quick --out runs/demo-quick  # ~1 minute version
    similar-rl demo --model runs/my_model --parts episodes,search --no-wandb

Exit status: 0 when every part ran cleanly, 1 when some part failed (the report says what), 2 for bad input.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import time
from pathlib import Path

from similar_rl.commands import fail
from similar_rl.demo.episodes import StepRow
from similar_rl.envs.miniwob import env_id_for

__all__ = ["StepRow", "add_arguments", "env_id_for", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML of demo settings (default: configs/demo.yaml)")
    parser.add_argument(
        "--model", help="reward model: 'default' (the shipped one), a checkpoint folder, or 'none' (unscored)"
    )
    parser.add_argument("--out", help="output folder (default runs/demo-<timestamp>)")
    parser.add_argument(
        "--quick", action="store_true", help="the ~1 minute version (the config's 'quick' section)"
    )
    parser.add_argument("--parts", help="comma-separated parts to run: episodes,search,ppo (default all)")
    parser.add_argument("--families", help="part 1: comma-separated MiniWoB++ families or env ids")
    parser.add_argument("--episodes", type=int, help="part 1: episodes per family")
    parser.add_argument("--policy", help="part 1: policy (heuristic, random)")
    parser.add_argument("--max-steps", type=int, help="part 1: step budget per episode")
    parser.add_argument("--search-envs", help="part 2: comma-separated env ids")
    parser.add_argument("--seeds", help="part 2: env seeds, '0-9' or '1,3,7'")
    parser.add_argument("--n", type=int, help="part 2: candidates per step for best-of-N")
    parser.add_argument("--ppo-steps", type=int, help="part 3: PPO env steps (total_timesteps)")
    parser.add_argument("--seed", type=int, help="seed of policies and PPO")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default 1: fastest on a busy 2-core box)"
    )
    parser.add_argument("--time-budget", type=float, help="total seconds; parts that do not fit are skipped")
    parser.add_argument("--no-wandb", action="store_true", help="no W&B run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The command-line options as a config layer (unset options are left out)."""
    layer: dict = {}

    def csv(text: str) -> list[str]:
        return [x.strip() for x in text.split(",") if x.strip()]

    top = {
        "model": args.model,
        "out": args.out,
        "seed": args.seed,
        "torch_threads": args.threads,
        "time_budget_s": args.time_budget,
        "parts": csv(args.parts) if args.parts else None,
        "wandb": False if args.no_wandb else None,
    }
    layer.update({k: v for k, v in top.items() if v is not None})
    episodes = {
        "families": csv(args.families) if args.families else None,
        "episodes_per_family": args.episodes,
        "policy": args.policy,
        "max_steps": args.max_steps,
    }
    search = {"envs": csv(args.search_envs) if args.search_envs else None, "seeds": args.seeds, "n": args.n}
    for name, section in (("episodes", episodes), ("search", search)):
        section = {k: v for k, v in section.items() if v is not None}
        if section:
            layer[name] = section
    if args.ppo_steps is not None:
        layer["ppo"] = {"args": {"total_timesteps": args.ppo_steps}}
    return layer


def run(args: argparse.Namespace) -> int:
    from similar_rl.demo import load_demo_config, load_reward_model, run_demo

    echo = functools.partial(print, flush=True)
    started = time.perf_counter()
    try:
        config = load_demo_config(args.config, overrides_from_args(args), quick=args.quick)
    except (ValueError, FileNotFoundError) as exc:
        return fail("demo", exc)
    echo(
        f"similar-rl demo: model={config.model} parts={','.join(config.parts)} seed={config.seed} "
        f"budget={config.time_budget_s:.0f}s{' (quick)' if args.quick else ''}"
    )
    echo(f"loading the reward model ({config.model}) ...")
    try:
        if config.torch_threads:
            import torch

            torch.set_num_threads(config.torch_threads)
        model = load_reward_model(config.model)
    except (FileNotFoundError, ValueError, OSError, ImportError) as exc:
        return fail("demo", f"cannot load the reward model: {exc}")
    load_s = time.perf_counter() - started
    echo(f"reward model ready in {load_s:.1f}s")
    command = "similar-rl demo"
    if Path(sys.argv[0]).name == "similar-rl":  # the real command line (not a test calling main())
        command = " ".join(["similar-rl", *(shlex.quote(a) for a in sys.argv[1:])])
    result = run_demo(
        config, model, echo=echo, progress=not args.no_progress, command=command, model_load_s=load_s
    )
    echo(f"\nfinished in {time.perf_counter() - started:.0f}s")
    echo(f"outputs: {result.out_dir}")
    if result.wandb_dir:
        echo(f"W&B offline run: {result.wandb_dir}  (upload: wandb sync {result.wandb_dir})")
    if result.failures:
        echo(f"{len(result.failures)} problem(s), listed in the report:")
        for f in result.failures:
            echo(f"  - {f['part']}{' ' + f['env_id'] if f.get('env_id') else ''}: {f['error'][:200]}")
    echo(f"report: {result.report}")
    return 0 if result.ok else 1
