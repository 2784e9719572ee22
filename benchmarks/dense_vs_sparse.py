"""PPO with Similar dense rewards vs env-only sparse rewards on MiniWoB++ families, several seeds, same budget.

One command reruns everything and writes, under ``--out`` (default ``benchmarks/results``):
``dense_vs_sparse.png`` (success rate vs env steps, mean and spread over seeds, one panel per family),
``dense_vs_sparse.md`` and ``dense_vs_sparse.json`` (final success rates, env steps the dense run needs to
reach the sparse run's final success rate, and the curves).

    python benchmarks/dense_vs_sparse.py                                   # default model, 3 families x 3 seeds
    python benchmarks/dense_vs_sparse.py --reward-model runs/my_model      # a model from `similar-rl train`
    python benchmarks/dense_vs_sparse.py --families click-button --seeds 1 --timesteps 32 --out /tmp/bench

The success rate of a curve point is the fraction of training episodes (stochastic policy) that ended in
success among those finished in that bin of env steps. Budget: about 1 + 2 minutes (sparse + dense) per
family and seed at 1024 steps on 2 cores, i.e. ~30 minutes for the default 3 x 3.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from similar_rl.agents.common import load_scorer
from similar_rl.agents.ppo import PPOArgs, train

FAMILIES = ("click-button", "click-link", "click-tab")


def curve(episodes_file: Path, total: int, bins: int) -> list[float]:
    """Success rate of the episodes that finished in each of ``bins`` equal bins of env steps (NaN if none)."""
    rows = [json.loads(line) for line in episodes_file.read_text().splitlines() if line.strip()]
    edges = np.linspace(0, total, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        hits = [r["success"] for r in rows if lo < r["global_step"] <= hi]
        out.append(float(np.mean(hits)) if hits else float("nan"))
    return out


def steps_to_reach(mean_curve: list[float], target: float, steps: list[int]) -> int | None:
    """First env step at which a curve reaches ``target`` (None if never)."""
    for value, step in zip(mean_curve, steps, strict=True):
        if np.isfinite(value) and value >= target - 1e-9:
            return step
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), help="MiniWoB++ task names")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--timesteps", type=int, default=1024, help="env steps per run (same for both)")
    parser.add_argument("--num-envs", type=int, default=1)
    parser.add_argument("--num-steps", type=int, default=64, help="steps per env per PPO rollout")
    parser.add_argument("--bins", type=int, default=8, help="points per learning curve")
    parser.add_argument("--reward-model", default="default", help="'default' or a SimilarRewardModel folder")
    parser.add_argument("--reward", default="total", choices=["total", "dims", "potential"])
    parser.add_argument("--reward-coef", type=float, default=0.1)
    parser.add_argument("--max-episode-steps", type=int, default=6)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--runs-dir", default="runs/dense_vs_sparse")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    scorer = load_scorer(opts.reward_model)
    bins = min(opts.bins, max(1, opts.timesteps // (opts.num_envs * opts.num_steps)))
    steps = [int(s) for s in np.linspace(0, opts.timesteps, bins + 1)[1:]]
    results: dict[str, dict] = {}
    started = time.time()
    for family in opts.families:
        results[family] = {}
        for condition in ("sparse", "dense"):
            curves, finals, secs = [], [], []
            for seed in opts.seeds:
                run_name = f"{family}__{condition}__{seed}"
                args = PPOArgs(
                    env_id=f"miniwob/{family}-v1",
                    reward="sparse" if condition == "sparse" else opts.reward,
                    reward_coef=opts.reward_coef,
                    reward_weights={"helpfulness": 1.0} if opts.reward == "dims" else {},
                    num_envs=opts.num_envs,
                    num_steps=opts.num_steps,
                    total_timesteps=opts.timesteps,
                    max_episode_steps=opts.max_episode_steps,
                    num_minibatches=2,
                    seed=seed,
                    output_dir=opts.runs_dir,
                    run_name=run_name,
                    tensorboard=False,
                    progress=False,
                )
                t0 = time.time()
                summary = train(args, scorer=None if condition == "sparse" else scorer)
                secs.append(time.time() - t0)
                c = curve(Path(summary["run_dir"]) / "episodes.jsonl", opts.timesteps, bins)
                curves.append(c)
                finals.append(c[-1])
            arr = np.array(curves, dtype=float)
            results[family][condition] = {
                "curves": curves,
                "mean": np.nanmean(arr, axis=0).tolist(),
                "std": np.nanstd(arr, axis=0).tolist(),
                "final_mean": float(np.nanmean(finals)),
                "final_per_seed": finals,
                "seconds_per_run": float(np.mean(secs)),
            }
        sparse, dense = results[family]["sparse"], results[family]["dense"]
        reach = steps_to_reach(dense["mean"], sparse["final_mean"], steps)
        dense["steps_to_sparse_final"] = reach
        dense["target_met"] = bool(
            (reach is not None and reach <= opts.timesteps // 2) or dense["final_mean"] > sparse["final_mean"]
        )

    report = {
        "config": vars(opts),
        "env_steps": steps,
        "results": results,
        "wall_seconds": time.time() - started,
    }
    (out / "dense_vs_sparse.json").write_text(json.dumps(report, indent=2) + "\n")
    _table(report, out / "dense_vs_sparse.md")
    _plot(report, out / "dense_vs_sparse.png")
    print((out / "dense_vs_sparse.md").read_text())
    return 0


def _table(report: dict, path: Path) -> None:
    cfg = report["config"]
    lines = [
        "# PPO: Similar dense rewards vs env-only sparse rewards (MiniWoB++)",
        "",
        f"Reward model: `{cfg['reward_model']}`; dense reward: `{cfg['reward']}` (coef {cfg['reward_coef']}); "
        f"{cfg['timesteps']} env steps per run; seeds {cfg['seeds']}; wall time {report['wall_seconds'] / 60:.1f} min.",
        "",
        "| family | sparse final success | dense final success | dense steps to sparse final | target met |",
        "|---|---|---|---|---|",
    ]
    for family, res in report["results"].items():
        s, d = res["sparse"], res["dense"]
        reach = d["steps_to_sparse_final"]
        lines.append(
            f"| {family} | {s['final_mean']:.2f} ± {np.nanstd(s['final_per_seed']):.2f} "
            f"| {d['final_mean']:.2f} ± {np.nanstd(d['final_per_seed']):.2f} "
            f"| {reach if reach is not None else 'never'} | {'yes' if d['target_met'] else 'no'} |"
        )
    lines += [
        "",
        "Target: the dense run reaches the sparse run's final success rate in at most half the env steps, or ends",
        "higher at equal budget. Success rate = fraction of training episodes (stochastic policy) that succeeded in",
        "the last bin of env steps.",
    ]
    path.write_text("\n".join(lines) + "\n")


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(report["results"])
    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 3.4), squeeze=False)
    x = np.array(report["env_steps"])
    for ax, family in zip(axes[0], families, strict=True):
        for condition, color in (("sparse", "tab:gray"), ("dense", "tab:blue")):
            res = report["results"][family][condition]
            mean, std = np.array(res["mean"]), np.array(res["std"])
            ax.plot(x, mean, color=color, marker="o", label=condition)
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
        ax.set_title(family)
        ax.set_xlabel("env steps")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("success rate")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
