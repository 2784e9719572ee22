"""Best-of-N with a Similar reward model vs the base policy on held-out MiniWoB++ families.

For each base policy (random; heuristic at a high temperature) it runs ``similar-rl search`` logic
(:func:`similar_rl.commands.search.run_search`): every family x seed is played by the base policy alone and by
best-of-N over that policy's samples, scored by the reward model. Writes ``<out>.json`` (every run's full
result) and ``<out>.md`` (one table per base policy and an overall table).

Full run (the held-out families of configs/search_miniwob.yaml, 30 seeds, N = 5, the shipped default model)::

    .venv/bin/python benchmarks/best_of_n.py

Smoke run (toy env, a tiny untrained model; proves the plumbing, not the model)::

    .venv/bin/python benchmarks/best_of_n.py --envs toy/click-button toy/login-form --seeds 0-4 --tiny-model \\
        --out /tmp/best_of_n_smoke

Timings come from a shared machine: compare the base/scaled wall-time ratio, not absolute seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "search_miniwob.yaml"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "best_of_n"
DEFAULT_POLICIES = ["random", "heuristic:temperature=1.0"]


def parse_policy(spec: str) -> tuple[str, dict[str, Any]]:
    """``"heuristic:temperature=1.0"`` -> ``("heuristic", {"temperature": 1.0})``."""
    name, _, rest = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(
                f"policy options look like name:key=value,key=value; got {spec!r}"
            )
        try:
            kwargs[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key.strip()] = value
    return name, kwargs


def build_parser() -> argparse.ArgumentParser:
    from similar_rl.harness.settings import parse_seeds

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="search YAML (envs and settings)")
    parser.add_argument("--envs", nargs="+", help="override the config's env ids")
    parser.add_argument("--seeds", type=parse_seeds, help="env seeds (default: the config's, 0-29)")
    parser.add_argument(
        "--policies", nargs="+", default=DEFAULT_POLICIES, help="base policies: name[:key=value,...]"
    )
    parser.add_argument("--n", type=int, default=5, help="candidates per step (default 5)")
    parser.add_argument("--method", choices=["best_of_n", "tree"], default="best_of_n")
    parser.add_argument("--model", help="checkpoint folder or 'default' (default: the config's, 'default')")
    parser.add_argument("--tiny-model", action="store_true", help="a tiny untrained model (smoke runs only)")
    parser.add_argument("--max-steps", type=int, help="step budget per episode (default: the config's)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output path without extension")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def tiny_model() -> Any:
    from similar_rl.model import SimilarRewardModel
    from similar_rl.testing import tiny_default_config

    return SimilarRewardModel(tiny_default_config(use_image=False))


def markdown(report: dict[str, Any]) -> str:
    from similar_rl.search import results_table

    cfg = report["settings"]
    lines = [
        "# Best-of-N with the Similar reward model vs the base policy",
        "",
        f"Model: `{report['model']}`. Method {cfg['method']}, N = {cfg['n']}, objective `{cfg['objective']}`, "
        f"step budget {cfg['max_steps']}, seeds {report['seeds_text']} ({len(cfg['seeds'])} per env). "
        "Both arms play the same envs and seeds; the env's reward is never shown to the selector.",
        "",
        f"Command: `{report['command']}`",
        "",
        "Wall times come from a shared 2-core machine: read the scaled/base ratio, not the seconds.",
        "",
        *([f"**{report['note']}**", ""] if report.get("note") else []),
        "## Overall",
        "",
        "| base policy | episodes | base success | best-of-N success | delta (points) | wall-time ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, result in report["runs"].items():
        base, scaled, delta = result["base"], result["scaled"], result["delta"]
        ratio = "n/a" if delta["wall_time_ratio"] is None else f"{delta['wall_time_ratio']:.2f}x"
        lines.append(
            f"| {label} | {base['episodes']} | {100 * base['success_rate']:.1f}% | "
            f"{100 * scaled['success_rate']:.1f}% | {100 * delta['success_rate']:+.1f} | {ratio} |"
        )
    for label, result in report["runs"].items():
        lines += ["", f"## Base policy: {label}", "", results_table(result, "base", f"best-of-{cfg['n']}")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    from similar_rl.model import load_model
    from similar_rl.search_job import run_search, search_settings

    torch.set_num_threads(args.threads)
    overrides = {
        "envs": args.envs, "seeds": args.seeds, "n": args.n, "method": args.method, "model": args.model,
        "max_steps": args.max_steps,
    }  # fmt: skip
    overrides = {k: v for k, v in overrides.items() if v is not None}
    settings = search_settings(args.config, overrides)
    model = tiny_model() if args.tiny_model else load_model(settings.model)
    model_name = "tiny untrained (smoke run)" if args.tiny_model else settings.model
    runs: dict[str, Any] = {}
    start = time.perf_counter()
    for spec in args.policies:
        name, kwargs = parse_policy(spec)
        run_settings = dataclasses.replace(settings, policy=name, policy_kwargs=kwargs)
        runs[spec] = run_search(run_settings, model=model, progress=not args.no_progress)
    seeds = settings.seeds
    contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    report = {
        "command": shlex.join([".venv/bin/python", "benchmarks/best_of_n.py", *argv]),
        "model": model_name,
        "settings": {
            k: v for k, v in dataclasses.asdict(settings).items() if k not in ("policy", "policy_kwargs")
        },
        "seeds_text": f"{seeds[0]}-{seeds[-1]}" if contiguous else ",".join(map(str, seeds)),
        "policies": args.policies,
        "runs": runs,
        "torch_threads": args.threads,
        "python": platform.python_version(),
        "total_wall_time_s": time.perf_counter() - start,
    }
    if args.tiny_model:
        report["note"] = (
            "Smoke run: the tiny model is untrained and scores every candidate 0, so best-of-N acts on its first "
            "sample; differences between the arms are sampling noise. This proves the plumbing, not the model."
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
