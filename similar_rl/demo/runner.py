"""Runs the demo's parts in order under a time budget, records what failed, and writes the report.

Each part's outcome is ``{"status": "ok" | "partial" | "failed" | "skipped", "seconds", "data", "error"}``. A
browser failure (:class:`~similar_rl.envs.base.EnvFailure`) inside a part skips that env and the part goes on; an
error that stops a part is recorded (message in the report, traceback in the log) and the next part runs.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from similar_rl.demo.config import DemoConfig, Echo
from similar_rl.demo.tracking import DemoTracker
from similar_rl.envs.base import EnvFailure
from similar_rl.scoring import as_scorer

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    out_dir: Path
    report: Path
    parts: dict[str, dict[str, Any]]
    failures: list[dict[str, str]] = field(default_factory=list)
    wandb_dir: Path | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed (a part skipped for time or for want of a model is not a failure)."""
        return not self.failures and all(p["status"] != "failed" for p in self.parts.values())


def default_out_dir(root: str | Path = "runs") -> Path:
    """``runs/demo-<YYYYmmdd-HHMMSS>`` (a suffix is added if it exists)."""
    base = Path(root) / f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def load_reward_model(spec: str) -> Any:
    """``"default"`` -> the shipped model; ``"none"`` -> None (unscored); else a checkpoint folder."""
    if spec == "none":
        return None
    from similar_rl.model import load_model

    return load_model(spec)


def _outcome(
    status: str, seconds: float | None = None, data: Any = None, error: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One part's outcome: ``{"status", "seconds", "data", "error"}`` plus any ``extra`` keys (a ``note``)."""
    return {"status": status, "seconds": seconds, "data": data, "error": error, **extra}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _failure(part: str, exc: BaseException) -> dict[str, str]:
    """A recorded failure: the part (or ``wandb``, ``plots``) and the error."""
    return {"part": part, "error": f"{type(exc).__name__}: {exc}"}


def run_demo(
    config: DemoConfig,
    model: Any = None,
    echo: Echo = logger.info,
    progress: bool = True,
    command: str = "similar-rl demo",
    model_load_s: float | None = None,
) -> DemoResult:
    """Run the parts ``config`` asks for and write the report, summary and plots under the output folder.

    Args:
        config: the settings (see :mod:`similar_rl.demo.config`).
        model: a loaded reward model (or Scorer); None scores nothing (and skips best-of-N).
        echo: where progress lines go (the CLI passes ``print``).
        progress: show tqdm bars in best-of-N and PPO.
        command: the command line recorded in the report.
        model_load_s: seconds the caller spent loading ``model`` (reported beside the run's own time).
    """
    import torch

    started = time.perf_counter()
    deadline = started + config.time_budget_s
    out_dir = Path(config.out) if config.out else default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)

    scorer = None if model is None else as_scorer(model, batch_size=config.batch_size)
    failures: list[dict[str, str]] = []
    tracker = _open_tracker(config, out_dir, failures, echo)
    parts: dict[str, dict[str, Any]] = {}

    def run_part(
        name: str, title: str, fn: Callable[[], dict[str, Any]], budget: float | None = None
    ) -> None:
        if name not in config.parts:
            parts[name] = _outcome("not asked")
            return
        if not getattr(config, name).enabled:
            parts[name] = _outcome("disabled")
            return
        left = deadline - time.perf_counter()
        if budget is not None and left < budget:
            note = f"skipped: {left:.0f} s left of the {config.time_budget_s:.0f} s budget (needs {budget:.0f} s)"
            echo(f"\n## {title}: {note}")
            parts[name] = _outcome("skipped", note=note)
            return
        echo(f"\n## {title}  [{time.perf_counter() - started:.0f}s elapsed]")
        t0 = time.perf_counter()
        try:
            data = fn()
            part_failures = data.get("failures", []) if isinstance(data, dict) else []
            failures.extend(part_failures)
            status = "partial" if part_failures or data.get("skipped") else "ok"
            parts[name] = _outcome(status, time.perf_counter() - t0, data)
        except Exception as exc:  # recorded in the report and the log; the next part still runs
            if isinstance(exc, EnvFailure):
                message = str(exc)
                echo(f"  ! {title}: the browser failed: {exc}\n    the demo goes on with the next part")
            else:
                message = f"{type(exc).__name__}: {exc}"
                logger.error("demo part %s failed:\n%s", name, traceback.format_exc())
                echo(f"  ! {title} failed: {message}\n    the demo goes on with the next part")
            failures.append({"part": name, "error": message})
            parts[name] = _outcome("failed", time.perf_counter() - t0, error=message)
        echo(f"   ({name}: {parts[name]['status']} in {parts[name]['seconds']:.0f}s)")

    def part_deadline(budget: float) -> float:
        return min(deadline, time.perf_counter() + budget)

    try:
        from similar_rl.demo.episodes import play_scored_episodes
        from similar_rl.demo.parts import run_best_of_n, run_ppo

        ep = config.episodes
        run_part(
            "episodes",
            f"Part 1/3: scored episodes ({ep.policy} policy, {len(ep.families)} families x {ep.episodes_per_family})",
            lambda: play_scored_episodes(ep, scorer, config.seed, echo, part_deadline(ep.time_budget_s)),
        )
        if parts["episodes"]["data"]:
            tracker_call(tracker.log_episodes, parts["episodes"]["data"], failures)
        if scorer is None and config.runs("search"):
            parts["search"] = _outcome("skipped", note="no reward model (--model none)")
        else:
            se = config.search
            run_part(
                "search",
                f"Part 2/3: base ({se.policy}) vs best-of-{se.n} on {len(se.envs)} held-out families",
                lambda: run_best_of_n(
                    se, scorer, config.seed, echo, part_deadline(se.time_budget_s), progress
                ),
            )
        search = parts["search"]["data"]
        if search and search.get("per_env"):
            echo("\n" + search["table"])
            (out_dir / "best_of_n.json").write_text(json.dumps(_jsonable(search), indent=2) + "\n")
            tracker_call(tracker.log_search, search, failures)
        run_part(
            "ppo",
            "Part 3/3: PPO with dense Similar rewards",
            lambda: run_ppo(config.ppo, scorer, config.seed, out_dir, echo, progress),
            budget=config.ppo.min_time_left_s,
        )
        if parts["ppo"]["data"]:
            tracker_call(tracker.log_ppo, parts["ppo"]["data"], failures)
    finally:
        result = _finish(config, out_dir, parts, failures, tracker, started, command, model_load_s)
    return result


def tracker_call(
    method: Callable[[dict[str, Any]], None], data: dict[str, Any], failures: list[dict[str, str]]
) -> None:
    """Call a tracker method; a W&B error is recorded, never fatal."""
    try:
        method(data)
    except Exception as exc:  # recorded: W&B problems must not stop the demo
        logger.warning("W&B logging failed: %s", exc)
        failures.append(_failure("wandb", exc))


def _open_tracker(config: DemoConfig, out_dir: Path, failures: list[dict[str, str]], echo: Echo) -> Any:
    enabled = config.wandb and config.wandb_mode != "disabled"
    try:
        settings = _jsonable(config.to_dict())
        return DemoTracker(enabled, out_dir, config.wandb_project, config.wandb_mode, out_dir.name, settings)
    except Exception as exc:  # recorded: the demo runs on without W&B
        failures.append(_failure("wandb", exc))
        echo(f"  ! W&B run could not start ({failures[-1]['error']}); going on without it")
        return DemoTracker(False, out_dir, "", "disabled", "", {})


def _finish(
    config: DemoConfig,
    out_dir: Path,
    parts: dict[str, dict[str, Any]],
    failures: list[dict[str, str]],
    tracker: Any,
    started: float,
    command: str,
    model_load_s: float | None,
) -> DemoResult:
    """Plots, W&B images, summary.json and report.md, whatever happened before."""
    from similar_rl.demo.report import write_plots, write_report

    plots: dict[str, Path] = {}
    try:
        plots = write_plots(out_dir, parts)
    except Exception as exc:  # recorded: a plotting error must not lose the report
        logger.error("plotting failed:\n%s", traceback.format_exc())
        failures.append(_failure("plots", exc))
    tracker_call(tracker.log_images, plots, failures)
    wandb_dir = None
    try:
        wandb_dir = tracker.finish()
    except Exception as exc:  # recorded
        failures.append(_failure("wandb", exc))
    seconds = time.perf_counter() - started
    files = {"summary (JSON)": out_dir / "summary.json", "settings": out_dir / "config.json"}
    if (out_dir / "best_of_n.json").is_file():
        files["best-of-N results (JSON)"] = out_dir / "best_of_n.json"
    summary = {
        "seconds": seconds,
        "model_load_s": model_load_s,
        "model": config.model,
        "parts": parts,
        "failures": failures,
        "wandb_dir": str(wandb_dir) if wandb_dir else None,
        "plots": {k: str(v) for k, v in plots.items()},
    }
    (out_dir / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    meta = {  # write_report reads the summary's keys and these
        **summary,
        "command": command,
        "started": datetime.fromtimestamp(time.time() - seconds).strftime("%Y-%m-%d %H:%M:%S"),
        "files": files,
        "threads": f"{config.torch_threads or 'default'} ({os.cpu_count()} cores, {platform.machine()})",
    }
    report = write_report(out_dir, parts, plots, meta)
    return DemoResult(out_dir, report, parts, failures, wandb_dir, seconds)


__all__ = ["DemoResult", "default_out_dir", "load_reward_model", "run_demo"]
