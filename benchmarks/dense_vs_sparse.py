"""PPO on MiniWoB++ families: env-only sparse reward vs Similar reward modes, several seeds, the same budget.

Two steps, both resumable per run: a run whose ``summary.json`` exists is read back, an unfinished one restarts,
and the per-seed curves of the reports already at ``<out>.json`` and ``<out>_pilot.json`` (written after each
trained run, committed) are reused when their settings match, so a new machine without the run folders goes on
where the report stopped. Runs go seed by seed (every family and arm at the first seed, then the next seed).

1. ``--pilot``: sparse PPO only, on candidate families; writes ``<out>_pilot.{md,json}`` with each family's final
   success, so the study's families (slow under sparse reward at the budget, e.g. below 0.7) are picked before
   any dense run;
2. the study: every arm on the chosen families. Arms: ``sparse`` (env reward only), ``dense`` (the recommended
   mode, ``--dense-mode``, default ``potential_penalty``), and the others of ``--arms`` (``potential``,
   ``potential_penalty``, ``additive`` = today's per-step ``total`` added to the env reward).

Writes ``<out>.{png,md,json}``: success rate vs env steps (mean over seeds with a 95% confidence band, one panel
per family), and per family and arm the final success and the env steps at which the mean curve first reaches the
sparse arm's final success. JSON: ``config``, ``env_steps``, ``results[family][arm]["curves"]`` (per seed,
success per bin), ``"mean"``, ``"ci95"``, ``"final_mean"``, ``"final_per_seed"``, ``"steps_to_sparse_final"``.

    python benchmarks/dense_vs_sparse.py --pilot --families click-checkboxes enter-date ... --seeds 1 --timesteps 2048
    python benchmarks/dense_vs_sparse.py --families F1 F2 F3 F4 F5 --seeds 1 2 3 4 5 --timesteps 2048
    python benchmarks/dense_vs_sparse.py --families click-button --seeds 1 --timesteps 32 --out /tmp/dvs  (smoke)

The success rate of a curve point is the fraction of training episodes (stochastic policy) that ended in success
among those finished in that bin of env steps. Cost on 2 cores: about 4-8 env steps per second per run.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

ARMS = ("sparse", "dense", "potential", "potential_penalty", "additive")
#: PPOArgs.reward of each arm name (``dense`` takes --dense-mode).
MODES = {
    "sparse": "sparse",
    "potential": "potential",
    "potential_penalty": "potential_penalty",
    "additive": "total",
}


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


def ci95(curves: np.ndarray) -> list[float]:
    """Half-width of the normal 95% interval of the mean over seeds (rows), per bin (0 with one seed)."""
    counts = np.sum(np.isfinite(curves), axis=0)
    sem = (
        np.nanstd(curves, axis=0, ddof=1) / np.sqrt(np.maximum(counts, 1)) if len(curves) > 1 else 0 * counts
    )
    return np.nan_to_num(1.96 * sem).tolist()


def run_curve(opts, family: str, arm: str, seed: int, scorer: object, bins: int) -> tuple[list[float], float]:
    """The learning curve and wall seconds of one (family, arm, seed) run (trained unless its folder is done)."""
    run_dir = run_one(opts, family, arm, seed, scorer)
    seconds = json.loads((run_dir / "summary.json").read_text()).get("bench_seconds", float("nan"))
    return curve(run_dir / "episodes.jsonl", opts.timesteps, bins), seconds


def run_one(opts: argparse.Namespace, family: str, arm: str, seed: int, scorer: object) -> Path:
    """The run folder of one (family, arm, seed), training it unless its summary exists."""
    from similar_rl.agents.ppo import PPOArgs, train

    run_name = f"{family}__{arm}__{seed}"
    run_dir = Path(opts.runs_dir) / run_name
    if (run_dir / "summary.json").is_file():
        return run_dir
    shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished run restarts (its episodes file would append)
    mode = opts.dense_mode if arm == "dense" else MODES[arm]
    args = PPOArgs(
        env_id=f"miniwob/{family}-v1",
        reward=mode,
        reward_coef=opts.reward_coef,
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
    start = time.time()
    train(args, scorer=None if mode == "sparse" else scorer)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["bench_seconds"] = time.time() - start
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return run_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", nargs="+", required=True, help="MiniWoB++ task names")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--timesteps", type=int, default=4096, help="env steps per run (same for every arm)")
    parser.add_argument("--pilot", action="store_true", help="sparse arm only (to pick the study's families)")
    parser.add_argument(
        "--arms", nargs="+", default=["sparse", "dense", "potential", "additive"], choices=ARMS
    )
    parser.add_argument(
        "--dense-mode", default="potential_penalty", choices=sorted(set(MODES.values()) - {"sparse"})
    )
    parser.add_argument("--num-envs", type=int, default=1)
    parser.add_argument("--num-steps", type=int, default=64, help="steps per env per PPO rollout")
    parser.add_argument("--bins", type=int, default=8, help="points per learning curve")
    parser.add_argument("--reward-model", default="default", help="'default' or a SimilarRewardModel folder")
    parser.add_argument("--reward-coef", type=float, default=0.1)
    parser.add_argument("--max-episode-steps", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/dense_vs_sparse", help="output path stem")
    parser.add_argument("--runs-dir", default="runs/dense_vs_sparse")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    arms = ["sparse"] if opts.pilot else list(dict.fromkeys(["sparse", "dense", *opts.arms]))
    twin = next((a for a in arms if a != "dense" and MODES.get(a) == opts.dense_mode), None)
    if twin:
        parser.error(
            f"arm {twin!r} is the dense mode itself (--dense-mode {opts.dense_mode}); drop it from --arms"
        )
    out = Path(f"{opts.out}_pilot" if opts.pilot else opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scorer = None
    if not opts.pilot:
        from similar_rl.agents.common import load_scorer

        scorer = load_scorer(opts.reward_model)
    bins = min(opts.bins, max(1, opts.timesteps // (opts.num_envs * opts.num_steps)))
    steps = [int(s) for s in np.linspace(0, opts.timesteps, bins + 1)[1:]]
    done = earlier_runs(out.with_suffix(".json"), opts)
    if not opts.pilot:  # the pilot's sparse runs, at the same settings, are the study's too
        done = {**earlier_runs(Path(f"{opts.out}_pilot.json"), opts), **done}
    runs: dict[tuple[str, str], dict[int, tuple[list, float]]] = {}
    started = time.time()
    for seed in opts.seeds:  # seed-major: every family and arm has a first curve early in a long study
        for family in opts.families:
            for arm in arms:
                key = (family, arm, seed)
                fresh = key not in done
                if fresh:
                    done[key] = run_curve(opts, family, arm, seed, scorer, bins)
                runs.setdefault((family, arm), {})[seed] = done[key]
                if fresh:  # after every trained run, so a kill loses at most the run in progress
                    write_report(out, opts, arms, steps, summarise(runs, steps), time.time() - started)
                    print(f"{family} {arm} seed {seed}: final {done[key][0][-1]:.2f}", flush=True)
    write_report(out, opts, arms, steps, summarise(runs, steps), time.time() - started)
    print(out.with_suffix(".md").read_text())
    return 0


def summarise(runs: dict[tuple[str, str], dict[int, tuple[list, float]]], steps: list[int]) -> dict:
    """``results[family][arm]`` of the report from the per-seed (curve, seconds) of the runs done so far."""
    results: dict[str, dict] = {}
    for (family, arm), by_seed in runs.items():
        curves = np.array([c for c, _ in by_seed.values()], dtype=float)
        finals = curves[:, -1].tolist()
        results.setdefault(family, {})[arm] = {
            "seeds": list(by_seed),
            "curves": curves.tolist(),
            "mean": np.nanmean(curves, axis=0).tolist(),
            "ci95": ci95(curves),
            "final_mean": float(np.nanmean(finals)),
            "final_per_seed": finals,
            "seconds_per_run": float(np.nanmean([sec for _, sec in by_seed.values()])),
        }
    for res in (r for r in results.values() if "sparse" in r):
        for arm in set(res) - {"sparse"}:
            res[arm]["steps_to_sparse_final"] = steps_to_reach(
                res[arm]["mean"], res["sparse"]["final_mean"], steps
            )
    return results


#: Settings that must match for an earlier report's runs to be reused.
SAME = ("timesteps", "num_envs", "num_steps", "bins", "reward_model", "reward_coef", "max_episode_steps",
        "dense_mode")  # fmt: skip


def earlier_runs(path: Path, opts: argparse.Namespace) -> dict[tuple[str, str, int], tuple[list, float]]:
    """(family, arm, seed) -> (curve, seconds) of an earlier report at ``path`` with the same settings.

    The committed report is the resume point when the run folders are gone (a new machine): its per-seed curves
    are reused instead of training again.
    """
    if not path.is_file():
        return {}
    report = json.loads(path.read_text())
    if any(report["config"].get(k) != getattr(opts, k) for k in SAME):
        return {}
    return {
        (family, arm, seed): (res["curves"][i], res.get("seconds_per_run", float("nan")))
        for family, arms in report["results"].items()
        for arm, res in arms.items()
        for i, seed in enumerate(res.get("seeds", report["config"]["seeds"]))
    }


def write_report(out: Path, opts, arms: list[str], steps: list[int], results: dict, seconds: float) -> None:
    """Write ``<out>.{json,md,png}`` for the runs done so far."""
    report = {
        "config": vars(opts),
        "arms": arms,
        "env_steps": steps,
        "results": results,
        "wall_seconds": seconds,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(table(report))
    plot(report, out.with_suffix(".png"))


def table(report: dict) -> str:
    cfg, arms = report["config"], report["arms"]
    lines = [
        "# PPO on MiniWoB++: sparse env reward vs Similar reward modes",
        "",
        f"Reward model `{cfg['reward_model']}`; `dense` = `{cfg['dense_mode']}` (coef {cfg['reward_coef']}); "
        f"{cfg['timesteps']} env steps per run; seeds {cfg['seeds']}; wall time {report['wall_seconds'] / 60:.1f} "
        "min (runs read back from earlier calls count 0).",
        "",
        "| " + " | ".join(["family"] + [f"{a} final" for a in arms] + [f"{a}: steps to sparse final" for a in arms[1:]])
        + " |",
        "|---" * (2 * len(arms)) + "|",
    ]  # fmt: skip
    for family, res in report["results"].items():
        finals = [
            f"{res[a]['final_mean']:.2f} ± {np.nanstd(res[a]['final_per_seed']):.2f} (n={len(res[a]['seeds'])})"
            if a in res else "not run" for a in arms
        ]  # fmt: skip
        reach = [
            str(res[a].get("steps_to_sparse_final") or "never") if a in res and "sparse" in res else "-"
            for a in arms[1:]
        ]  # fmt: skip
        lines.append(f"| {family} | " + " | ".join(finals + reach) + " |")
    lines += [
        "",
        "Final = success rate of the training episodes (stochastic policy) in the last bin of env steps, mean ± std",
        "over seeds (n = seeds done). Target of the study: `dense` reaches the sparse final success in at most half",
        "the env steps on >= 3 families and ends no more than 10 points below sparse on any.",
    ]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(report["results"])
    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 3.4), squeeze=False)
    x = np.array(report["env_steps"])
    colors = dict(zip(ARMS, ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
    for ax, family in zip(axes[0], families, strict=True):
        for arm in (a for a in report["arms"] if a in report["results"][family]):
            res = report["results"][family][arm]
            mean, band = np.array(res["mean"]), np.array(res["ci95"])
            ax.plot(x, mean, color=colors[arm], marker="o", label=arm)
            ax.fill_between(x, mean - band, mean + band, color=colors[arm], alpha=0.15)
        ax.set_title(family)
        ax.set_xlabel("env steps")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("success rate (95% CI over seeds)")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
