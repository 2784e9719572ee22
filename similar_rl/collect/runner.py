"""Collection of many tasks (env id x seed) into a dataset folder: resumable, fault tolerant, parallel.

* **Unit of commit: the task.** A worker searches one task to the end (:class:`~similar_rl.collect.mcts.TaskSearch`)
  and returns the whole result; the main process saves its screenshots, turns it into step records and pairs
  and commits them in one :meth:`DatasetWriter.commit_task` call (records first, then the ``done.jsonl``
  line). A kill at any moment loses at most the tasks in flight; a rerun on the same folder skips committed
  tasks, truncates any half-written tail and recomputes the rest, so nothing is duplicated or lost. Because
  every random draw comes from a generator derived from (config seed, task id, operation), the recomputed
  tasks give exactly the records an uninterrupted run would have written.
* **Env failures** are retried on a rebuilt env (see :mod:`similar_rl.collect.mcts`) and recorded in
  ``failures.jsonl`` and the manifest; a task whose operation keeps failing is recorded as failed and not
  committed (a rerun tries it again).
* **Parallel workers.** With ``workers > 1`` tasks go to a spawn-context process pool; each worker process owns
  its env (one at a time: it closes the previous env when the env id changes), policy and judge. Results come
  back unordered and only the main process writes, so the records equal a one-worker run's (file order aside).
* **Pruned tasks** (no successful calibration episode) are committed with no records and
  ``extra["status"] == "pruned"``, so a rerun does not search them again.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from similar_rl.collect.config import CollectConfig
from similar_rl.collect.labels import accumulated
from similar_rl.collect.mcts import TaskResult, TaskSearch, task_id_for
from similar_rl.data.records import PairRecord, StepRecord
from similar_rl.harness.env_session import EnvSession

logger = logging.getLogger(__name__)

#: Config keys that control a run but not its records: they may change between a run and its resumption.
RUN_CONTROL_KEYS = ("envs", "seeds", "workers", "max_tasks", "max_retries", "step_timeout_s")


def labelling_config(cfg: CollectConfig) -> dict[str, Any]:
    """The part of the config that determines the records (stored in the manifest, checked on resume)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in RUN_CONTROL_KEYS}


@dataclass
class CollectSummary:
    """What one ``collect`` call did."""

    out: str
    tasks: int = 0  # tasks in the config
    skipped: int = 0  # already committed before this run
    ok: int = 0
    pruned: int = 0
    failed: int = 0
    steps: int = 0  # step records written by this run
    pairs: int = 0
    pairs_per_type: dict[str, int] = field(default_factory=dict)
    env_steps: int = 0
    children: int = 0
    env_failures: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    failed_tasks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


# -- worker side ---------------------------------------------------------------------------------------------------
class TaskWorker:
    """Per-process state: the config, one env session at a time with its policy, and the judge. :meth:`run`
    searches one task to the end (in :func:`collect`'s process pool, or as a Ray actor of
    :func:`similar_rl.collect.distributed.collect_ray`)."""

    def __init__(self, cfg: CollectConfig) -> None:
        self.cfg = cfg
        self.session: EnvSession | None = None
        self.policy: Any = None
        self.judge: Any = None

    def session_for(self, env_id: str) -> EnvSession:
        """The env session of ``env_id`` (the previous env is closed when the env id changes)."""
        if self.session is None or self.session.env_id != env_id:
            from similar_rl.envs import get_adapter
            from similar_rl.policies import make_policy

            self.close()
            adapter = get_adapter(env_id)
            self.session = EnvSession(
                env_id, adapter, self.cfg.env_kwargs, self.cfg.max_retries, float(self.cfg.step_timeout_s)
            )
            self.policy = make_policy(self.cfg.policy, adapter, **self.cfg.policy_kwargs)
        return self.session

    def run(self, env_id: str, seed: int) -> TaskResult:
        session = self.session_for(env_id)
        if self.judge is None:
            from similar_rl.collect.judges import make_judge

            self.judge = make_judge(self.cfg.judge, **self.cfg.judge_kwargs)
        session.failures = []
        session.steps = 0
        return TaskSearch(self.cfg, session, self.policy, self.judge, seed).run()

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


_WORKER: TaskWorker | None = None


def _init_worker(cfg_dict: dict[str, Any]) -> None:
    global _WORKER
    from multiprocessing.util import Finalize

    _WORKER = TaskWorker(CollectConfig.from_dict(cfg_dict))
    Finalize(_WORKER, _WORKER.close, exitpriority=10)


def _run_in_worker(task: tuple[str, int]) -> TaskResult:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(*task)


# -- main side -----------------------------------------------------------------------------------------------------
def step_records(
    result: TaskResult, cfg: CollectConfig, save_screenshot: Callable[[Any], str] | None
) -> list[StepRecord]:
    """The step records of a finished task: one per labelled child.

    ``record_id`` is ``"<task_id>/<node>/<j>"``, ``node_id`` ``"<task_id>/<node>"`` (shared by siblings).
    ``meta`` keeps what pairs and audits need: ``depth``, ``L0``, ``ac`` (AC of the node's path), ``remaining``
    (R_j), ``chosen`` (greedy: the search advanced to this child), ``terminal``, ``search`` and ``rollouts``:
    each rollout's actions *from this child on* (the full trajectory is ``history + actions``), success and end.
    """
    records = []
    for node in result.nodes:
        shot = None
        if save_screenshot is not None and cfg.save_screenshots and node.state.screenshot is not None:
            shot = save_screenshot(node.state.screenshot)
        for j, child in enumerate(node.children):
            records.append(
                StepRecord(
                    record_id=f"{result.task_id}/{node.node_id}/{j}",
                    task_id=result.task_id,
                    env_id=result.env_id,
                    seed=result.seed,
                    instruction=node.state.instruction,
                    step_idx=node.depth + 1,
                    action=child.action,
                    labels=child.labels,
                    history=list(node.prefix),
                    observation_text=node.state.observation_text,
                    screenshot=shot,
                    node_id=f"{result.task_id}/{node.node_id}",
                    platform=cfg.platform,
                    rollout_success=child.stats.odds_of_success,
                    rollout_length=child.stats.mean_length,
                    judge_error=child.verdict.error,
                    meta={
                        "depth": node.depth,
                        "L0": result.l0,
                        "ac": accumulated(node.ac_sum),
                        "remaining": child.stats.remaining,
                        "chosen": node.chosen == j,
                        "terminal": child.terminal,
                        "search": cfg.search,
                        "judge_reason": child.verdict.reason,
                        "rollouts": [
                            {"actions": r.actions[node.depth :], "success": r.success, "end": r.end}
                            for r in child.rollouts
                        ],
                    },
                )
            )
    return records


def task_trajectories(steps: list[StepRecord]) -> list[Any]:
    """The root-to-leaf paths of a task's record tree as :class:`~similar_rl.data.pairs.Trajectory` objects.

    A record is the step ``history -> action``; a leaf is a record whose path (history + action) is no node's
    history. The trajectory of a leaf is the chain of records along its history, then the leaf. In the greedy
    schedule these are the chosen path and, at every depth, the chosen prefix followed by each other sibling.
    """
    from similar_rl.data.pairs import Trajectory

    by_path = {(*r.history, r.action): r for r in steps}
    expanded = {tuple(r.history) for r in steps}
    trajectories = []
    for path, leaf in by_path.items():
        if path in expanded:
            continue
        chain = [by_path.get(path[: k + 1]) for k in range(len(path))]
        if any(c is None for c in chain):  # ancestors not labelled (cannot happen in MCTS-P)
            continue
        trajectories.append(Trajectory.from_steps(chain, success=(leaf.rollout_success or 0.0) > 0.5))
    return trajectories


def build_task_pairs(steps: list[StepRecord], drop_failed_subtrees: bool = True) -> list[PairRecord]:
    """Preference pairs of one task's step records: sibling pairs per dimension and ``total``, and ``traj`` pairs.

    With ``drop_failed_subtrees`` (the method's pruning), nodes where no child ever succeeded, and everything
    below them, give no pairs (their records are still written).
    """
    if not steps:
        return []
    from similar_rl.data.pairs import build_pairs, build_traj_pairs

    if drop_failed_subtrees:
        succeeded = {r.node_id for r in steps if (r.rollout_success or 0.0) > 0}
        failed_paths = {tuple(r.history) for r in steps if r.node_id not in succeeded}
        steps = [
            r
            for r in steps
            if not any(tuple(r.history[:k]) in failed_paths for k in range(len(r.history) + 1))
        ]
    return build_pairs(steps) + build_traj_pairs(task_trajectories(steps))


def _iter_results(cfg: CollectConfig, pending: list[tuple[str, int]]) -> Iterator[TaskResult]:
    if cfg.workers == 1 or len(pending) <= 1:
        worker = TaskWorker(cfg)
        try:
            for task in pending:
                yield worker.run(*task)
        finally:
            worker.close()
        return
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(min(cfg.workers, len(pending)), initializer=_init_worker, initargs=(cfg.to_dict(),))
    try:
        yield from pool.imap_unordered(_run_in_worker, pending, chunksize=1)
    except BaseException:  # stopped early or failed: the workers may be busy
        pool.terminate()
        raise
    else:
        pool.close()  # let the workers close their envs
    finally:
        pool.join()


def collect(
    cfg: CollectConfig,
    out: str | Path,
    *,
    progress: bool = True,
    on_task: Callable[[TaskResult], None] | None = None,
) -> CollectSummary:
    """Run MCTS-P over every task of ``cfg`` into the dataset folder ``out`` (resuming it if it holds data)
    and return a :class:`CollectSummary` of this run. ``cfg.max_tasks`` stops the run after that many newly
    finished tasks; ``progress`` shows a tqdm bar with ETA (on stderr); ``on_task`` is called in the main
    process after each task is committed or recorded as failed."""
    return run_collection(
        cfg,
        out,
        lambda pending: contextlib.nullcontext(_iter_results(cfg, pending)),
        desc="collect",
        progress=progress,
        on_task=on_task,
    )


def run_collection(
    cfg: CollectConfig,
    out: str | Path,
    results_for: Callable[[list[tuple[str, int]]], AbstractContextManager[Iterable[TaskResult]]],
    *,
    desc: str,
    progress: bool = True,
    on_task: Callable[[TaskResult], None] | None = None,
) -> CollectSummary:
    """The frame every collection backend shares: open (or resume) the dataset folder, skip finished tasks,
    and commit what ``results_for(pending)`` yields, in its order. ``results_for`` is only called when some
    task is pending; it returns a context manager around the results (a backend starts and stops its workers
    there)."""
    from similar_rl.data.dataset import DatasetWriter

    if not cfg.envs:
        raise ValueError("CollectConfig.envs is empty; pass env ids (e.g. toy/login-form) or a --tasks file")
    start = time.perf_counter()
    summary = CollectSummary(out=str(out), tasks=len(cfg.tasks))
    with DatasetWriter(
        out, config=labelling_config(cfg), resume=True, seeds=cfg.seeds, env_ids=cfg.envs
    ) as writer:
        pending = [t for t in cfg.tasks if not writer.is_done(task_id_for(*t))]
        summary.skipped = summary.tasks - len(pending)
        if summary.skipped:
            logger.info("resuming %s: %d of %d tasks already done", out, summary.skipped, summary.tasks)
        if pending:
            with results_for(pending) as results:
                commit_results(
                    writer,
                    results,
                    cfg,
                    summary,
                    total=len(pending),
                    desc=desc,
                    progress=progress,
                    on_task=on_task,
                )
    summary.pairs_per_type = dict(sorted(summary.pairs_per_type.items()))
    summary.seconds = time.perf_counter() - start
    return summary


def commit_results(
    writer: Any,
    results: Iterable[TaskResult],
    cfg: CollectConfig,
    summary: CollectSummary,
    *,
    total: int,
    desc: str = "collect",
    progress: bool = True,
    on_task: Callable[[TaskResult], None] | None = None,
) -> None:
    """Commit each result as it arrives (:func:`commit_result`), with a tqdm bar over ``total`` pending tasks.

    Stops, setting ``summary.stopped_early``, once ``cfg.max_tasks`` new tasks are done while others remain;
    ``on_task`` is called after each commit.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="task", disable=not progress, dynamic_ncols=True)
    new_tasks = 0
    try:
        for result in results:
            commit_result(writer, result, cfg, summary)
            new_tasks += 1
            bar.update(1)
            bar.set_postfix(ok=summary.ok, pruned=summary.pruned, failed=summary.failed, steps=summary.steps)
            if on_task is not None:
                on_task(result)
            if cfg.max_tasks is not None and new_tasks >= cfg.max_tasks and new_tasks < total:
                summary.stopped_early = True
                break
    finally:
        bar.close()


def commit_result(writer: Any, result: TaskResult, cfg: CollectConfig, summary: CollectSummary) -> None:
    """Write one task's result through ``writer`` and count it in ``summary``.

    A failed task is recorded in the failure log (not committed, so a rerun tries it again); otherwise its
    screenshots, step records and pairs are committed in one :meth:`DatasetWriter.commit_task` call.
    """
    for failure in result.failures:
        writer.record_failure(
            result.task_id, f"{failure['op']}: {failure['error']}", attempt=failure["attempt"]
        )
    summary.env_failures += len(result.failures)
    summary.env_steps += result.env_steps
    if result.status == "failed":
        writer.record_failure(result.task_id, f"task failed: {result.error}", attempt=cfg.max_retries)
        summary.failed += 1
        summary.failed_tasks.append(result.task_id)
        logger.warning("%s failed: %s", result.task_id, result.error)
        return
    steps = step_records(result, cfg, writer.save_screenshot)
    pairs = build_task_pairs(steps, cfg.drop_failed_subtrees)
    writer.commit_task(result.task_id, steps, pairs, extra=result.summary())
    summary.children += result.n_children
    summary.steps += len(steps)
    summary.pairs += len(pairs)
    for pair in pairs:
        summary.pairs_per_type[pair.type] = summary.pairs_per_type.get(pair.type, 0) + 1
    if result.status == "pruned":
        summary.pruned += 1
    else:
        summary.ok += 1


def tasks_from_file(path: str | Path) -> list[str]:
    """Read a task list: one env id per line (``#`` comments and blank lines ignored, duplicates dropped)."""
    envs: list[str] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if len(line.split()) != 1 or "/" not in line:
            raise ValueError(
                f"{path}: line {number} must hold one env id like 'miniwob/click-test-2', got {line!r}"
            )
        if line not in envs:
            envs.append(line)
    return envs
