"""Success rate of the random and heuristic policies on MiniWoB++ task families (seeded, bounded steps).

Every policy plays the same seeds (``--seed`` .. ``--seed + episodes - 1``) on one browser per family; an
episode ends on MiniWoB's own termination or after ``--max-steps`` actions (then it counts as a failure).

    .venv/bin/python benchmarks/policy_success.py --episodes 30 --max-steps 10
Results go to benchmarks/results/policy_success.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from similar_rl.demo.episodes import step_rows
from similar_rl.envs import make_env
from similar_rl.envs.base import EnvFailure
from similar_rl.envs.miniwob import env_id_for
from similar_rl.policies import make_policy

RESULTS = Path(__file__).parent / "results"
FAMILIES = (
    "click-button",
    "click-checkboxes",
    "enter-text",
    "login-user",
    "click-tab",
    "choose-list",
    "use-autocomplete",
    "click-link",
    "focus-text",
)
POLICIES = ("random", "heuristic")


def play(family: str, policies: list[str], episodes: int, seed: int, max_steps: int) -> dict[str, dict]:
    env_id = env_id_for(family)
    env, adapter = make_env(env_id)
    out = {}
    try:
        for p_index, name in enumerate(policies):
            policy = make_policy(name, adapter)
            rng = np.random.default_rng([seed, p_index])
            successes, steps, rewards, errors = 0, [], [], 0
            started = time.perf_counter()
            for episode in range(episodes):
                rows = []
                try:
                    rows = list(step_rows(env, adapter, policy, env_id, seed + episode, max_steps, rng))
                except EnvFailure as exc:  # a crashed browser: count the episode as failed, start a new one
                    errors += 1
                    print(f"  {family} {name} seed {seed + episode}: {exc}", flush=True)
                    env.close()
                    env, adapter = make_env(env_id)
                last = rows[-1] if rows else None
                successes += bool(last and last.success)
                steps.append(len(rows))
                rewards.append(last.reward if last and last.done else 0.0)
            out[name] = {
                "episodes": episodes,
                "successes": successes,
                "success_rate": round(successes / episodes, 4),
                "mean_steps": round(float(np.mean(steps)), 2),
                "mean_final_reward": round(float(np.mean(rewards)), 4),
                "env_errors": errors,
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(f"{family:18s} {name:10s} {successes:3d}/{episodes} ({out[name]['seconds']}s)", flush=True)
    finally:
        env.close()
    return out


def markdown(result: dict) -> str:
    policies = result["policies"]
    lines = [
        "# Policy success rate on MiniWoB++",
        "",
        f"{result['episodes']} seeded episodes per family and policy (seeds {result['seed']}.."
        f"{result['seed'] + result['episodes'] - 1}), at most {result['max_steps']} steps each; "
        "success = MiniWoB reward > 0 at termination. Cells: success rate (mean steps per episode).",
        "",
        "| family | " + " | ".join(policies) + " |",
        "|---|" + "---|" * len(policies),
    ]
    for family, by_policy in result["results"].items():
        cells = [f"{r['success_rate']:.2f} ({r['mean_steps']:.1f})" for r in (by_policy[p] for p in policies)]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    means = [np.mean([r[p]["success_rate"] for r in result["results"].values()]) for p in policies]
    lines.append("| **mean** | " + " | ".join(f"**{m:.2f}**" for m in means) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "policy_success")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {f: play(f, args.policies, args.episodes, args.seed, args.max_steps) for f in args.families}
    result = {
        "families": args.families,
        "policies": args.policies,
        "episodes": args.episodes,
        "seed": args.seed,
        "max_steps": args.max_steps,
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    args.out.with_suffix(".md").write_text(table)
    print()
    print(table)


if __name__ == "__main__":
    main()
