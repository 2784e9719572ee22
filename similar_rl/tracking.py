"""Per-dimension logging of Similar rewards to Weights & Biases and TensorBoard.

- :class:`SimilarTrackingCallback`: a ``transformers.TrainerCallback`` for TRL trainers using
  :func:`similar_rl.rewards.similar_reward_funcs`; each log writes ``similar/mean/<key>``,
  ``similar/hist/<key>``, ``similar/invalid_fraction`` and a ``similar/samples`` table of recent steps
  (screenshots also as ``similar/samples_screenshots`` images, which offline runs keep). TRL logs
  ``rewards/similar_<key>/mean|std``.
- :class:`GymRewardLogger`: record/dump logging for Gymnasium loops fed by the wrappers' info.

Backends: ``"wandb"`` (honours ``WANDB_MODE=offline``; uses the active run, else starts one) and
``"tensorboard"`` (``torch.utils.tensorboard.SummaryWriter``).

Example:
    >>> logger = GymRewardLogger(backends=())  # in-memory only
    >>> scores = {k: 1.0 for k in SCORE_KEYS}
    >>> logger.record({"similar": scores, "similar_env_reward": 0.0}, terminated=False, truncated=False)
    >>> logger.record({"similar": scores, "similar_env_reward": 1.0}, terminated=True, truncated=False)
    >>> metrics = logger.dump(step=2)
    >>> metrics["similar/episode/total_sum"], metrics["similar/episode/length"], metrics["similar/episode/success_rate"]
    (2.0, 2.0, 1.0)
"""

from __future__ import annotations

import functools
import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from transformers import TrainerCallback

from similar_rl.dimensions import SCORE_KEYS
from similar_rl.harness.run_log import start_wandb, tensorboard_writer

logger = logging.getLogger(__name__)

__all__ = ["GymRewardLogger", "SimilarTrackingCallback"]

BACKENDS = ("wandb", "tensorboard")


def _check_backends(backends: Sequence[str]) -> tuple[str, ...]:
    backends = tuple(backends)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown logging backend(s) {unknown}; choose from {BACKENDS}")
    return backends


class _Sinks:
    """W&B and/or TensorBoard writers behind one ``scalars/histograms/table`` interface."""

    def __init__(
        self,
        backends: Sequence[str],
        log_dir: str | None,
        wandb_init: Mapping[str, Any] | None = None,
        step_metric: str = "train/global_step",
    ):
        self.backends = _check_backends(backends)
        self.log_dir = log_dir
        self.wandb_init = dict(wandb_init or {})
        self.step_metric = step_metric
        self._wandb: Any = None
        self._own_run = False
        self._tb: Any = None

    def open(self) -> None:
        if "wandb" in self.backends and self._wandb is None:
            init = {"project": "similar_rl", **self.wandb_init}
            folder = init.pop("dir", self.log_dir)
            _, self._own_run = start_wandb(folder=folder, reuse=True, **init)
            import wandb

            self._wandb = wandb
        if "tensorboard" in self.backends and self._tb is None:
            self._tb = tensorboard_writer(os.path.join(self.log_dir or "runs", "similar"))

    def write(
        self,
        step: int,
        scalars: Mapping[str, float],
        histograms: Mapping[str, Sequence[float]] | None = None,
        table: tuple[str, list[str], list[list[Any]]] | None = None,
    ) -> None:
        self.open()
        arrays = {n: np.asarray(v, dtype=np.float64) for n, v in (histograms or {}).items() if len(v)}
        if self._wandb is not None and self._wandb.run is not None:
            payload: dict[str, Any] = dict(scalars)
            payload.update({name: self._wandb.Histogram(values) for name, values in arrays.items()})
            if table is not None:
                name, columns, rows = table
                payload[name] = self._wandb.Table(columns=columns, data=[self._wandb_row(r) for r in rows])
                # Offline runs keep no image files for images inside tables: log them as media as well.
                images = self._wandb_images(columns, rows)
                if images:
                    payload[f"{name}_screenshots"] = images
            payload[self.step_metric] = step
            self._wandb.log(payload)
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, step)
            for name, values in arrays.items():
                self._tb.add_histogram(name, values, step)
            if table is not None:
                self._tb_table(step, *table)
            self._tb.flush()

    def _wandb_row(self, row: list[Any]) -> list[Any]:
        return [self._wandb.Image(v) if isinstance(v, np.ndarray) and v.ndim == 3 else v for v in row]

    def _wandb_images(self, columns: list[str], rows: list[list[Any]]) -> list[Any]:
        if "screenshot" not in columns:
            return []
        col, out = columns.index("screenshot"), []
        shown = [i for i, c in enumerate(columns) if c in ("action", "total")]  # in the caption
        for r, row in enumerate(rows):
            if isinstance(row[col], np.ndarray):
                caption = f"row {r}: " + ", ".join(f"{columns[i]}={row[i]}" for i in shown)
                out.append(self._wandb.Image(row[col], caption=caption))
        return out

    def _tb_table(self, step: int, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        text_cols = [i for i, c in enumerate(columns) if c != "screenshot"]
        shot = columns.index("screenshot") if "screenshot" in columns else None
        lines = ["| " + " | ".join(columns[i] for i in text_cols) + " |", "|" + "---|" * len(text_cols)]
        for r, row in enumerate(rows):
            cells = [str(row[i]).replace("|", "/").replace("\n", " ") for i in text_cols]
            lines.append("| " + " | ".join(cells) + " |")
            if shot is not None and isinstance(row[shot], np.ndarray):
                self._tb.add_image(f"{name}/{r}", row[shot], step, dataformats="HWC")
        self._tb.add_text(name, "\n".join(lines), step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._own_run and self._wandb is not None and self._wandb.run is not None:
            self._wandb.finish()
        self._wandb, self._own_run = None, False


SAMPLE_COLUMNS = ["global_step", "instruction", "history", "completion", "action", "screenshot", *SCORE_KEYS]


def _shared_scores(reward_funcs: Any) -> Any:
    from similar_rl.rewards import SimilarBatchScores

    if isinstance(reward_funcs, SimilarBatchScores):
        return reward_funcs
    funcs = reward_funcs if isinstance(reward_funcs, Sequence) else [reward_funcs]
    for func in funcs:
        shared = getattr(func, "batch_scores", None)
        if isinstance(shared, SimilarBatchScores):
            return shared
    raise ValueError(
        "SimilarTrackingCallback needs the reward functions from similar_rl.rewards.similar_reward_funcs "
        "(or their .batch_scores); none of the given objects has one"
    )


class SimilarTrackingCallback(TrainerCallback):
    """Logs per-dimension means, histograms and a sample table of Similar rewards during TRL training.

    Args:
        reward_funcs: the list from :func:`similar_rl.rewards.similar_reward_funcs` (or one of them).
        backends: ``("wandb", "tensorboard")`` or a subset; None follows the trainer's ``report_to``.
        max_samples: rows of the sample table per log.
        log_images: put screenshots in the table (``wandb.Image``; TensorBoard images).
        log_dir: TensorBoard folder / W&B dir when this callback starts the run (default: ``output_dir``).
        prefix, wandb_init: metric name prefix; keyword arguments of ``wandb.init`` when no run is active.
    """

    def __init__(
        self,
        reward_funcs: Any,
        backends: Sequence[str] | None = None,
        max_samples: int = 16,
        log_images: bool = True,
        log_dir: str | None = None,
        prefix: str = "similar",
        wandb_init: Mapping[str, Any] | None = None,
    ) -> None:
        self.batch_scores = _shared_scores(reward_funcs)
        self.backends = None if backends is None else _check_backends(backends)
        self.max_samples = max_samples
        self.log_images = log_images
        self.log_dir = log_dir
        self.prefix = prefix
        self.wandb_init = wandb_init
        self.sinks: _Sinks | None = None
        self.logged: list[dict[str, float]] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        backends = self.backends
        if backends is None:
            report_to = args.report_to if isinstance(args.report_to, list | tuple) else [args.report_to]
            backends = tuple(b for b in BACKENDS if b in report_to)
        self.sinks = _Sinks(backends, self.log_dir or args.output_dir, self.wandb_init)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if self.sinks is None or not state.is_world_process_zero:
            return
        values, samples = self.batch_scores.drain(), self.batch_scores.drain_samples()
        if not values["invalid"]:
            return
        scalars = {f"{self.prefix}/mean/{k}": float(np.mean(values[k])) for k in SCORE_KEYS if values[k]}
        scalars[f"{self.prefix}/invalid_fraction"] = float(np.mean(values["invalid"]))
        histograms = {f"{self.prefix}/hist/{k}": values[k] for k in SCORE_KEYS}
        rows = [self._row(s) for s in samples[-self.max_samples :]] if self.max_samples else []
        table = (f"{self.prefix}/samples", SAMPLE_COLUMNS, rows) if rows else None
        self.sinks.write(state.global_step, scalars, histograms, table)
        self.logged.append(scalars)

    def _row(self, sample: Any) -> list[Any]:
        step, scores = sample.step, sample.scores or {}
        image = step.screenshot if (step is not None and self.log_images) else None
        return [
            sample.global_step,
            step.instruction if step else "",
            "\n".join(step.history) if step else "",
            sample.completion,
            step.action if step else "(invalid)",
            image,
            *[scores.get(k) for k in SCORE_KEYS],
        ]

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.sinks is not None:
            self.sinks.close()


#: What :class:`GymRewardLogger` sums over an episode.
_SUMS = (*SCORE_KEYS, "length", "env_return", "shaped_return")


class GymRewardLogger:
    """Record/dump logger of Similar rewards for Gymnasium loops (single or vector envs).

    Call :meth:`record` after every ``env.step`` with its ``info``, ``terminated`` and ``truncated`` (arrays for
    vector envs), then :meth:`dump` whenever you want a log line; it returns and writes:

    - ``similar/step/<key>``: mean score per step since the last dump;
    - ``similar/episode/<key>_sum`` and ``_mean``: per-episode sum and mean of each score, averaged over the
      episodes that ended since the last dump; ``similar/episode/length``, ``env_return``, ``success_rate``
      (with ``reward=`` given to :meth:`record`, also ``shaped_return``) and ``similar/episodes`` (their count);
    - hack alarms, ``similar/alarm/...``: ``irrelevant_steps`` and ``incoherent_steps`` (the share of steps the
      model scores below 0.5 on task relevance / coherence), ``early_failures`` (the share of episodes the env
      ended without success), ``repeated_actions`` (the share of steps that repeat the previous action, with
      ``action=`` given), and ``shaped_up_success_flat`` (1 when the mean shaped return rose since the previous
      dump while the success rate did not: the signature of reward farming).

    Success is ``info["success"]`` when the env reports it, else ``terminated and env_reward > 0``.

    Args:
        backends: any of ``"wandb"``, ``"tensorboard"`` (empty: in-memory only, see :attr:`history`).
        log_dir: TensorBoard folder (``<log_dir>/similar``) / W&B dir for a run this logger starts.
        prefix: metric prefix; info_key / env_reward_key: the wrapper's info keys.
        wandb_init: keyword arguments of ``wandb.init`` when no run is active.
    """

    def __init__(
        self,
        backends: Sequence[str] = ("wandb",),
        log_dir: str | None = None,
        prefix: str = "similar",
        info_key: str = "similar",
        env_reward_key: str = "similar_env_reward",
        wandb_init: Mapping[str, Any] | None = None,
    ) -> None:
        self.sinks = _Sinks(backends, log_dir, wandb_init, step_metric="global_step")
        self.prefix = prefix
        self.info_key = info_key
        self.env_reward_key = env_reward_key
        self.history: list[dict[str, float]] = []
        # per sub-env: the running sums of its current episode
        self._running = defaultdict(functools.partial(dict.fromkeys, _SUMS, 0.0))
        self._step_values: dict[str, list[float]] = {k: [] for k in SCORE_KEYS}
        self._episodes: list[dict[str, float]] = []
        self._last_action: dict[int, str] = {}
        self._repeats: list[float] = []
        self._previous: tuple[float, float] | None = None  # (shaped return, success rate) of the last dump

    def record(
        self, info: Mapping[str, Any], terminated: Any, truncated: Any, reward: Any = None, action: Any = None
    ) -> None:
        """Add one step (single env) or one vector step (arrays with ``info["_similar"]`` masks); ``reward`` (the
        shaped reward the agent got) and ``action`` (the action string) feed the hack alarms."""
        terminated, truncated = np.atleast_1d(terminated), np.atleast_1d(truncated)
        rewards = None if reward is None else np.atleast_1d(np.asarray(reward, dtype=np.float64))
        actions = None if action is None else np.atleast_1d(np.asarray(action, dtype=object))
        vector = f"_{self.info_key}" in info
        if self.info_key not in info:
            raise KeyError(
                f"info has no {self.info_key!r} key: wrap the env in similar_rl.wrappers.SimilarRewardWrapper "
                "(or pass info_key=...)"
            )
        scores = info[self.info_key]
        mask = np.asarray(info[f"_{self.info_key}"], dtype=bool) if vector else np.ones(1, dtype=bool)
        env_rewards = np.atleast_1d(np.asarray(info.get(self.env_reward_key, 0.0), dtype=np.float64))
        success_info = info.get("success")
        for i in range(len(terminated)):
            if not mask[i]:
                continue
            acc = self._running[i]
            for k in SCORE_KEYS:
                value = float(np.atleast_1d(scores[k])[i])
                acc[k] += value
                self._step_values[k].append(value)
            acc["length"] += 1
            env_reward = float(env_rewards[i]) if env_rewards.size > i else 0.0
            acc["env_return"] += env_reward
            acc["shaped_return"] += float(rewards[i]) if rewards is not None else env_reward
            if actions is not None:
                self._repeats.append(float(self._last_action.get(i) == actions[i]))
                self._last_action[i] = actions[i]
            if terminated[i] or truncated[i]:
                if success_info is not None and (not vector or bool(info.get("_success", mask)[i])):
                    success = bool(np.atleast_1d(success_info)[i])
                else:
                    success = bool(terminated[i] and env_reward > 0)
                self._last_action.pop(i, None)
                del self._running[i]
                episode = {f"{k}_sum": acc[k] for k in SCORE_KEYS}
                episode.update({f"{k}_mean": acc[k] / acc["length"] for k in SCORE_KEYS})
                episode.update({k: acc[k] for k in ("length", "env_return", "shaped_return")})
                episode.update(
                    success_rate=float(success), early_failure=float(terminated[i] and not success)
                )
                self._episodes.append(episode)

    def dump(self, step: int) -> dict[str, float]:
        """Aggregate what was recorded since the last dump, write it to the backends and return it."""
        metrics = {f"{self.prefix}/step/{k}": float(np.mean(v)) for k, v in self._step_values.items() if v}
        if self._episodes:
            for name in self._episodes[0]:
                metrics[f"{self.prefix}/episode/{name}"] = float(np.mean([e[name] for e in self._episodes]))
        metrics[f"{self.prefix}/episodes"] = float(len(self._episodes))
        metrics.update(self._alarms())
        if self.sinks.backends:
            histograms = {f"{self.prefix}/hist/{k}": v for k, v in self._step_values.items()}
            self.sinks.write(step, metrics, histograms)
        self._step_values, self._episodes, self._repeats = {k: [] for k in SCORE_KEYS}, [], []
        self.history.append(metrics)
        return metrics

    def _alarms(self) -> dict[str, float]:
        alarm = f"{self.prefix}/alarm"
        out: dict[str, float] = {}
        for name, key in (("irrelevant_steps", "task_relevance"), ("incoherent_steps", "coherence")):
            if self._step_values[key]:
                out[f"{alarm}/{name}"] = float(np.mean(np.asarray(self._step_values[key]) < 0.5))
        if self._repeats:
            out[f"{alarm}/repeated_actions"] = float(np.mean(self._repeats))
        if self._episodes:
            out[f"{alarm}/early_failures"] = float(np.mean([e["early_failure"] for e in self._episodes]))
            shaped = float(np.mean([e["shaped_return"] for e in self._episodes]))
            success = float(np.mean([e["success_rate"] for e in self._episodes]))
            if self._previous is not None:
                rising = shaped > self._previous[0] + 1e-9 and success <= self._previous[1] + 1e-9
                out[f"{alarm}/shaped_up_success_flat"] = float(rising)
            self._previous = (shaped, success)
        return out

    def close(self) -> None:
        """Close the TensorBoard writer and finish a W&B run this logger started."""
        self.sinks.close()
