"""Collection throughput: env steps/s and labelled children/s with 1 and 2 env workers on MiniWoB++.

Each setting collects the same tasks into a fresh folder; times include browser start-up (one per worker).
Timings on a shared machine are noisy: compare the ratio between the two settings of one run.

    .venv/bin/python benchmarks/collect_throughput.py --envs miniwob/click-button-v1 miniwob/login-user-v1 \
        --seeds 0-1 -n 3
Results go to benchmarks/results/collect_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

from similar_rl.collect.config import CollectConfig
from similar_rl.collect.runner import collect
from similar_rl.harness.settings import parse_seeds

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["miniwob/click-button-v1", "miniwob/login-user-v1"])
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1])
    parser.add_argument("-n", "--children", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = []
    for workers in args.workers:
        cfg = CollectConfig(
            envs=args.envs,
            seeds=args.seeds,
            n_children=args.children,
            max_steps=args.max_steps,
            workers=workers,
            policy_kwargs={"temperature": 1.0},
        )
        with tempfile.TemporaryDirectory() as out:
            s = collect(cfg, out, progress=False)
        rows.append(
            {
                "workers": workers,
                "tasks": s.tasks,
                "env_steps": s.env_steps,
                "children": s.children,
                "seconds": round(s.seconds, 2),
                "env_steps_per_s": round(s.env_steps / s.seconds, 3),
                "children_per_s": round(s.children / s.seconds, 3),
            }
        )
    base = rows[0]
    for row in rows:
        row["speedup_vs_first"] = round(row["env_steps_per_s"] / base["env_steps_per_s"], 2)
    result = {"envs": args.envs, "seeds": args.seeds, "n_children": args.children, "max_steps": args.max_steps,
              "machine": f"{platform.machine()} {platform.system()}, shared 2-core VM", "rows": rows}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "collect_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Collection throughput (MiniWoB++, heuristic policy, rule judge)",
        "",
        f"envs {', '.join(args.envs)}; seeds {args.seeds}; N = {args.children}; step budget {args.max_steps}. "
        "Times include browser start-up. Shared 2-core machine: read the ratio, not the absolute numbers.",
        "",
        "| workers | tasks | env steps | children | seconds | env steps/s | children/s | ratio vs 1 worker |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['tasks']} | {r['env_steps']} | {r['children']} | {r['seconds']} | "
            f"{r['env_steps_per_s']} | {r['children_per_s']} | {r['speedup_vs_first']} |"
        )
    (RESULTS / "collect_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
