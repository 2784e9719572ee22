"""The demo's report: PNG plots (matplotlib, Agg backend) and ``report.md`` under the run folder.

:func:`write_plots` draws the parts' plots; :func:`write_report` writes the markdown around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from similar_rl.dimensions import DIMENSIONS, SCORE_KEYS
from similar_rl.envs.miniwob import task_name as short_env

#: Plot colours of the five dimensions (colour-blind friendly) and of the total.
COLORS = {
    "helpfulness": "#0072B2",
    "odds_of_success": "#009E73",
    "efficiency": "#E69F00",
    "task_relevance": "#CC79A7",
    "coherence": "#56B4E9",
    "total": "#000000",
}
LABELS = {**{k: k.replace("_", " ") for k in DIMENSIONS}, "total": "total (right axis)"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_episode_scores(episodes: list[dict[str, Any]], path: Path) -> Path | None:
    """One panel per episode: the five scores per step (left axis) and the total (right axis)."""
    scored = [e for e in episodes if e["steps"] and e["steps"][0]["scores"] is not None]
    if not scored:
        return None
    plt = _pyplot()
    cols = min(3, len(scored))
    rows = (len(scored) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows + 0.8), squeeze=False)
    for ax in axes.flat[len(scored) :]:
        ax.set_visible(False)
    width = 0.8 / len(DIMENSIONS)
    for ax, episode in zip(axes.flat, scored, strict=False):
        steps = [s["step"] for s in episode["steps"]]
        for j, key in enumerate(DIMENSIONS):
            offset = (j - (len(DIMENSIONS) - 1) / 2) * width
            values = [s["scores"][key] for s in episode["steps"]]
            ax.bar([x + offset for x in steps], values, width, color=COLORS[key])
        ax.axhline(0, color="#999999", lw=0.6)
        ax.set(
            xlabel="step", ylabel="dimension score", xticks=steps, xlim=(min(steps) - 0.6, max(steps) + 0.6)
        )
        twin = ax.twinx()
        twin.plot(steps, [s["scores"]["total"] for s in episode["steps"]], "D--", color="black", lw=1.5, ms=6)
        twin.set_ylabel("total")
        outcome = "success" if episode["success"] else "failure"
        ax.set_title(f"{short_env(episode['env_id'])} (seed {episode['seed']}): {outcome}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[k]) for k in DIMENSIONS]
    handles.append(plt.Line2D([], [], color="black", marker="D", ls="--"))  # the total
    fig.legend(
        handles, [LABELS[k] for k in SCORE_KEYS], loc="lower center", ncol=6, fontsize=8, frameon=False
    )
    fig.suptitle("Similar scores of each step (heuristic policy)", fontsize=12)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return _save(plt, fig, path)


def plot_best_of_n(result: Mapping[str, Any], path: Path) -> Path | None:
    """Grouped bars: success rate of the base policy and of best-of-N per env and overall."""
    per_env = result.get("per_env") or {}
    if not per_env:
        return None
    plt = _pyplot()
    names = [short_env(e) for e in per_env] + ["overall"]
    fig, ax = plt.subplots(figsize=(1.9 * len(names) + 2, 4.2))
    width = 0.38
    xs = range(len(names))
    arms = (
        ("base", -1, f"{result.get('policy', 'base')} policy", "#999999"),
        ("scaled", 1, f"best-of-{result.get('n', 'N')} with Similar", "#0072B2"),
    )
    for arm, side, label, color in arms:
        rates = [100 * a[arm]["success_rate"] for a in [*per_env.values(), result]]
        bars = ax.bar([x + side * width / 2 for x in xs], rates, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8, padding=2)
    ax.set_xticks(list(xs), names, rotation=15, ha="right")
    ax.set(ylabel="success rate (%)", ylim=(0, 128))
    episodes = result["base"]["episodes"]
    ax.set_title(
        f"Held-out MiniWoB++ families: base vs best-of-N ({episodes} episodes per arm, "
        f"{100 * result['delta']['success_rate']:+.0f} points overall)",
        fontsize=10,
    )
    ax.legend(loc="upper center", ncol=2, fontsize=9, frameon=False)
    ax.axvline(len(names) - 1.5, color="#cccccc", lw=0.8)
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_ppo(result: Mapping[str, Any], path: Path) -> Path | None:
    """Top: rolling success rate and each episode's outcome over env steps. Bottom: mean Similar total and
    env return per episode."""
    episodes = result.get("episode_log") or []
    if not episodes:
        return None
    plt = _pyplot()
    curve = result["curve"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.5, 5.6), sharex=True)
    x = curve["global_step"]
    top.plot(x, curve["success_rate"], "-", color="#0072B2", lw=2, label="rolling success rate (8 episodes)")
    top.scatter(x, curve["success"], s=14, color="#D55E00", alpha=0.6, label="episode outcome (1 = success)")
    top.set(ylim=(-0.08, 1.08), ylabel="success")
    args = result.get("args", {})
    top.set_title(
        f"PPO on {short_env(args.get('env_id', '?'))} with dense Similar rewards "
        f"(reward={args.get('reward', '?')}, coef {args.get('reward_coef', '?')})",
        fontsize=10,
    )
    steps = [e["global_step"] for e in episodes]
    if "similar_total" in episodes[0] and args.get("reward") != "sparse":
        totals = [e["similar_total"] for e in episodes]
        bottom.scatter(steps, totals, s=12, marker="D", color="black", label="Similar total (mean per step)")
    bottom.scatter(steps, [e["env_return"] for e in episodes], s=12, color="#009E73", label="env return")
    bottom.axhline(0, color="#999999", lw=0.6)
    bottom.set(xlabel="env steps", ylabel="per episode")
    for ax in (top, bottom):
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(plt, fig, path)


def write_plots(out_dir: Path, results: Mapping[str, Any]) -> dict[str, Path]:
    """Draw the plots of the parts that produced results; returns ``{name: path}``."""
    plots: dict[str, Path] = {}
    makers = {
        "episode_scores": ("episodes", plot_episode_scores, lambda r: r.get("episodes", [])),
        "best_of_n": ("search", plot_best_of_n, lambda r: r),
        "ppo_curve": ("ppo", plot_ppo, lambda r: r),
    }
    for name, (part, maker, pick) in makers.items():
        data = (results.get(part) or {}).get("data")
        if not data:
            continue
        path = maker(pick(data), out_dir / f"{name}.png")
        if path is not None:
            plots[name] = path
    return plots


def _episode_tables(episodes: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for i, ep in enumerate(episodes, 1):
        outcome = "success" if ep["success"] else "failure"
        lines += [
            f"**Episode {i}: {ep['env_id']} seed {ep['seed']}: {outcome}.** Instruction: {ep['instruction']}",
            "",
            "| step | action | env reward | " + " | ".join(SCORE_KEYS) + " |",
            "|---" * (3 + len(SCORE_KEYS)) + "|",
        ]
        for s in ep["steps"]:
            cells = " | ".join(f"{s['scores'][k]:+.3f}" if s["scores"] else "-" for k in SCORE_KEYS)
            lines.append(f"| {s['step']} | `{s['action']}` | {s['env_reward']:+.3f} | {cells} |")
        lines.append("")
    return lines


def write_report(
    out_dir: Path, results: Mapping[str, Any], plots: Mapping[str, Path], meta: Mapping[str, Any]
) -> Path:
    """Write ``<out_dir>/report.md`` and return its path.

    Args:
        out_dir: the run folder.
        results: ``{part: {"status", "seconds", "data", "error"}}`` for ``episodes``, ``search``, ``ppo``.
        plots: ``{name: path}`` from :func:`write_plots`.
        meta: ``model``, ``command``, ``started``, ``seconds``, ``wandb_dir``, ``files`` (name -> path),
            ``failures`` (list of dicts), ``threads``.
    """
    rel = lambda p: Path(p).relative_to(out_dir).as_posix() if Path(p).is_relative_to(out_dir) else str(p)  # noqa: E731
    load = (
        f" (+ {meta['model_load_s']:.0f} s loading the model)" if meta.get("model_load_s") is not None else ""
    )
    lines = [
        "# similar-rl demo report",
        "",
        f"Started {meta.get('started', '?')}; took {meta.get('seconds', 0):.0f} s{load}; reward model:"
        f" `{meta.get('model', '?')}`; torch threads: {meta.get('threads', '?')}.",
        "",
        f"Reproduce: `{meta.get('command', 'similar-rl demo')}`",
        "",
        "| part | status | seconds | note |",
        "|---|---|---|---|",
    ]
    titles = {
        "episodes": "1. scored episodes",
        "search": "2. best-of-N vs base",
        "ppo": "3. PPO with dense rewards",
    }
    for part, title in titles.items():
        r = results.get(part) or {"status": "not run"}
        note = (r.get("error") or r.get("note") or "").replace("|", "/").replace("\n", " ")[:160]
        seconds = f"{r['seconds']:.0f}" if r.get("seconds") is not None else "-"
        lines.append(f"| {title} | {r['status']} | {seconds} | {note} |")
    lines.append("")

    def section(title: str, body: list[str] | None, plot: str, alt: str, empty: str = "(no results)") -> None:
        """A part's section: its text and its plot, or ``empty`` when it produced nothing."""
        lines.extend([f"## {title}", "", *(body or [empty, ""])])
        if body and plot in plots:
            lines.extend([f"![{alt}]({rel(plots[plot])})", ""])

    episodes, search, ppo = ((results.get(part) or {}).get("data") or {} for part in titles)
    body = None
    if episodes.get("episodes"):
        body = [
            "Each step of a heuristic-policy episode, scored by the reward model through `SimilarRewardWrapper`"
            " (dimension scores in label units; `total` is the gated sum the model ranks actions by).",
            "",
            *_episode_tables(episodes["episodes"]),
        ]
    section("1. Scored episodes", body, "episode_scores", "per-step scores", "(no episodes ran)")
    body = None
    if search.get("per_env"):
        body = [
            f"Base policy `{search['policy']}` alone vs best-of-{search['n']} (sample {search['n']} actions from it,"
            f" act on the one with the highest `{search['objective']}`), on families kept out of the default model's"
            f" training; seeds {search['seeds'][0]}-{search['seeds'][-1]}, step budget {search['max_steps']}.",
            "",
            search["table"],
            "",
        ]
    section("2. Best-of-N vs the base policy on held-out families", body, "best_of_n", "base vs best-of-N")
    body = None
    if ppo.get("episode_log") is not None:
        args = ppo["args"]
        body = [
            f"`{args['env_id']}`, {ppo['global_step']} env steps, {ppo['episodes']} episodes, reward `{args['reward']}`"
            f" (env reward + {args['reward_coef']} x Similar total). Success rate over the first half of the episodes:"
            f" {_pct(ppo['first_half_success_rate'])}; second half: {_pct(ppo['second_half_success_rate'])}. A run this"
            " short shows the pipeline, not a trained agent.",
            "",
            f"Run folder: `{rel(ppo['run_dir'])}` (episodes.jsonl, TensorBoard events, checkpoint).",
            "",
        ]
    section("3. PPO with dense Similar rewards", body, "ppo_curve", "PPO curve")

    files = [f"- {name}: `{rel(path)}`" for name, path in (meta.get("files") or {}).items()]
    files += [f"- plot {name}: `{rel(path)}`" for name, path in plots.items()]
    lines += ["## Files", "", *files, ""]
    wandb_dir = meta.get("wandb_dir")
    lines += ["## Weights & Biases", ""]
    if wandb_dir:
        lines += [
            f"Offline run: `{wandb_dir}` (per-dimension scores, the best-of-N table, the PPO curve, the plots).",
            f"Upload it with `wandb sync {wandb_dir}`.",
            "",
        ]
    else:
        lines += ["W&B logging was off (`--no-wandb`) or failed (see below).", ""]
    failures = meta.get("failures") or []
    lines += ["## Problems", ""]
    for f in failures:
        where = f" ({f['env_id']})" if f.get("env_id") else ""
        lines.append(f"- {f['part']}{where}: {f['error']}")
    if not failures:
        lines.append("None.")
    lines.append("")
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


__all__ = ["plot_best_of_n", "plot_episode_scores", "plot_ppo", "short_env", "write_plots", "write_report"]
