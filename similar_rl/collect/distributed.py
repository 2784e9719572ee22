"""MCTS-P collection distributed with Ray: the same records and the same resumable folder as
:func:`similar_rl.collect.runner.collect`, with the tasks searched on Ray workers.

The driver (this process) owns the dataset folder and commits every result exactly as the single-machine
runner does, so rerunning with either backend resumes the folder. Each actor is one
:class:`~similar_rl.collect.runner.TaskWorker`: it keeps its env (a browser for MiniWoB++) across the tasks of
one env id. Joining a cluster (``address``, or the ``RAY_ADDRESS`` environment variable) needs the package
installed on the workers, or shipped with ``ray_init_kwargs={"runtime_env": {...}}``. Ray's usage statistics
are switched off unless the caller set them.

Example (needs ``pip install ray``)::

    from similar_rl.collect.config import CollectConfig
    from similar_rl.collect.distributed import collect_ray

    cfg = CollectConfig(envs=["toy/login-form"], seeds=[0, 1, 2, 3], n_children=3, workers=2)
    summary = collect_ray(cfg, "data/toy_ray", num_cpus=2)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from similar_rl._optional import require
from similar_rl.collect.config import CollectConfig
from similar_rl.collect.mcts import TaskResult
from similar_rl.collect.runner import CollectSummary, TaskWorker, run_collection

logger = logging.getLogger(__name__)

__all__ = ["collect_ray"]


def _ray_results(ray: Any, cfg: CollectConfig, pending: list[tuple[str, int]]) -> Iterator[TaskResult]:
    from ray.util import ActorPool

    actor_cls = ray.remote(num_cpus=1, max_restarts=0)(TaskWorker)
    actors = [actor_cls.remote(cfg) for _ in range(max(1, min(cfg.workers, len(pending))))]
    pool = ActorPool(actors)
    try:
        yield from pool.map_unordered(lambda actor, task: actor.run.remote(*task), pending)
    finally:
        for actor in actors:
            try:
                ray.get(actor.close.remote(), timeout=30)
            except (ray.exceptions.RayError, TimeoutError) as exc:
                logger.warning("closing a Ray collection actor failed: %s", exc)
            ray.kill(actor)


def collect_ray(
    cfg: CollectConfig,
    out: str | Path,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    on_task: Callable[[TaskResult], None] | None = None,
) -> CollectSummary:
    """Run MCTS-P over every task of ``cfg`` on Ray workers into the dataset folder ``out`` (resuming it).

    Args:
        cfg: the collection config; ``cfg.workers`` is the number of Ray actors (parallel task searches).
        out: the dataset folder (created, or resumed if it holds data).
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``); None starts a local Ray instance
            unless Ray is already initialised in this process (then it is used as is and left running).
        num_cpus: CPUs of the local instance (ignored with ``address``).
        ray_init_kwargs: more ``ray.init`` keywords (e.g. ``runtime_env``, ``object_store_memory``).
        progress: show a tqdm progress bar.
        on_task: called in this process after each task is committed or recorded as failed.

    Returns the :class:`~similar_rl.collect.runner.CollectSummary` of this run, as the local runner does.
    """
    ray = require("ray", "distributed collection (--backend ray)")

    @contextlib.contextmanager
    def ray_results(pending: list[tuple[str, int]]) -> Iterator[Iterator[TaskResult]]:
        started_here = not ray.is_initialized()
        if started_here:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = num_cpus
                # a private instance needs no metrics agent (on small loaded machines it can miss the raylet's
                # fixed start-up deadline and kill the start)
                os.environ.setdefault("RAY_enable_metrics_collection", "0")
            kwargs.update(ray_init_kwargs or {})
            ray.init(address=address, **kwargs)
        results = _ray_results(ray, cfg, pending)
        try:
            yield results
        finally:
            results.close()  # closes the actors before Ray goes away
            if started_here:
                ray.shutdown()

    return run_collection(cfg, out, ray_results, desc="collect[ray]", progress=progress, on_task=on_task)
