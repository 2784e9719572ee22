"""The demo's W&B run (offline by default): per-step scores, the best-of-N table, the PPO curve and the plots.

:class:`DemoTracker` is a no-op when disabled, so the runner calls it unconditionally.

Example:
    >>> tracker = DemoTracker(enabled=False, out_dir=".", project="p", mode="offline", name="n", config={})
    >>> tracker.log_episodes({"episodes": []}); tracker.finish() is None
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from similar_rl.dimensions import SCORE_KEYS


class DemoTracker:
    """One W&B run for the whole demo.

    Args:
        enabled: False makes every method a no-op.
        out_dir: the demo's output folder (the run lands in ``<out_dir>/wandb/offline-run-*``).
        project, mode, name: W&B project, mode (``"offline"`` makes no connection) and run name.
        config: the demo's settings (recorded in the run).

    Attributes:
        run_dir: the run's folder (what ``wandb sync`` takes), or None.
    """

    def __init__(
        self, enabled: bool, out_dir: str | Path, project: str, mode: str, name: str, config: dict[str, Any]
    ) -> None:
        self.run: Any = None
        self.run_dir: Path | None = None
        self._wandb: Any = None
        if not enabled:
            return
        from similar_rl.harness.run_log import start_wandb

        self.run, _ = start_wandb(
            project=project,
            name=name,
            folder=out_dir,
            config=config,
            mode=mode,
            feature="the demo's W&B logging (or pass --no-wandb)",
        )
        import wandb

        self._wandb = wandb
        self.run_dir = Path(self.run.dir).parent
        for prefix, axis in (("episodes", "episodes/step_index"), ("ppo", "ppo/global_step")):
            self.run.define_metric(axis)
            self.run.define_metric(f"{prefix}/*", step_metric=axis)

    @property
    def enabled(self) -> bool:
        return self.run is not None

    def log_episodes(self, result: dict[str, Any]) -> None:
        """Every scored step as ``episodes/<key>`` (x axis: step index over all episodes) and a table."""
        if not self.enabled:
            return
        columns = ["episode", "env_id", "seed", "step", "action", "env_reward", *SCORE_KEYS]
        table = self._wandb.Table(columns=columns)
        index = 0
        for e, episode in enumerate(result.get("episodes", [])):
            for step in episode["steps"]:
                scores = step["scores"] or {}
                index += 1
                row = {"step_index": index, "env_reward": step["env_reward"], **scores}
                self.run.log({f"episodes/{k}": v for k, v in row.items()})
                cells = [episode["env_id"], episode["seed"], step["step"], step["action"], step["env_reward"]]
                table.add_data(e + 1, *cells, *[scores.get(k) for k in SCORE_KEYS])
        self.run.log({"episodes/steps": table})

    def log_search(self, result: dict[str, Any]) -> None:
        """The base vs best-of-N table and the overall success rates (also in the run summary)."""
        if not self.enabled or not result.get("per_env"):
            return
        columns = ["env_id", "episodes", "base_success", "best_of_n_success", "base_steps", "best_of_n_steps"]
        table = self._wandb.Table(columns=columns)
        for env_id, arms in result["per_env"].items():
            cells = [arms[arm][k] for k in ("success_rate", "mean_steps") for arm in ("base", "scaled")]
            table.add_data(env_id, arms["base"]["episodes"], *cells)
        self.run.log({"search/table": table})
        for arm, key in (("base", "base"), ("scaled", "best_of_n")):
            self.run.summary[f"search/{key}_success_rate"] = result[arm]["success_rate"]
        self.run.summary["search/delta_points"] = 100 * result["delta"]["success_rate"]

    def log_ppo(self, result: dict[str, Any]) -> None:
        """The PPO episodes: rolling success rate, success, env return and Similar total per episode."""
        if not self.enabled:
            return
        curve = result.get("curve", {})
        similar = [f"similar_{k}" for k in SCORE_KEYS]
        for i, episode in enumerate(result.get("episode_log", [])):
            row = {k: episode[k] for k in ("global_step", "success", "env_return", "length")}
            row.update({k: episode[k] for k in similar if k in episode})
            self.run.log(
                {"ppo/success_rate": curve["success_rate"][i], **{f"ppo/{k}": v for k, v in row.items()}}
            )

    def log_images(self, plots: dict[str, Path]) -> None:
        """The report's PNG plots as ``plots/<name>`` images."""
        if not self.enabled:
            return
        self.run.log({f"plots/{name}": self._wandb.Image(str(path)) for name, path in plots.items()})

    def finish(self) -> Path | None:
        """Close the run; returns its folder (None when disabled)."""
        if not self.enabled:
            return None
        self.run.finish()
        return self.run_dir


__all__ = ["DemoTracker"]
