"""The MCTS-P collection config: every hyper-parameter of ``similar-rl collect`` in one validated dataclass.

Example:
    >>> cfg = CollectConfig(envs=["toy/click-button"], seeds=[0, 1], n_children=3)
    >>> cfg.n_calibration
    3
    >>> CollectConfig.from_dict({"envs": ["toy/click-button"], "children": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown collect config key(s) ['children']; known keys: [...]
    >>> CollectConfig(envs=["toy/click-button"], n_children=0)
    Traceback (most recent call last):
    ...
    ValueError: CollectConfig.n_children must be >= 1, got 0 (set -n/--children to the number of children per node)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from similar_rl.fields import option

SEARCH_MODES = ("greedy", "uct")


@dataclass
class CollectConfig:
    """Hyper-parameters of MCTS-P collection (docs/method.md sections 2-3)."""

    envs: list[str] = option(list, "env ids to collect on, e.g. miniwob/click-test-2 or toy/login-form")
    seeds: list[int] = option(lambda: [0], "env seeds ('0-39' or a list); one task = (env id, seed)")
    n_children: int = option(5, "N: children expanded per node (authors: 5 web, 8 others)")
    n_calibration: int | None = option(
        None, "full episodes from the initial state that estimate L0 (default: N)"
    )
    rollouts_per_child: int = option(1, "k: rollouts per child (OS = success fraction)")
    max_steps: int = option(20, "step budget of an episode; rollouts running past it count as failures")
    depth_margin: int = option(1, "depth cap = ceil(L0) + depth_margin expansions")
    max_depth: int | None = option(None, "hard cap on the depth (None: only the L0 cap)")
    search: str = option("greedy", "'greedy' (MCTS-P schedule) or 'uct' (visit counts)")
    uct_iterations: int = option(8, "uct: node expansions per task")
    exploration: float = option(1.0, "uct: exploration constant c of Q + c*sqrt(ln N/n)")
    policy: str = option("heuristic", "policy name for make_policy (children, rollouts)")
    policy_kwargs: dict[str, Any] = option(dict, "keyword arguments of the policy")
    judge: str = option("rule", "judge name for make_judge (task relevance, coherence)")
    judge_kwargs: dict[str, Any] = option(dict, "keyword arguments of the judge")
    env_kwargs: dict[str, Any] = option(dict, "keyword arguments of make_env")
    seed: int = option(0, "base seed; each task's randomness derives from it and the task")
    workers: int = option(1, "parallel env worker processes (each owns its env)")
    max_retries: int = option(
        2, "times a failed env operation is retried on a rebuilt env before the task fails"
    )
    step_timeout_s: float = option(
        60.0, "seconds one env operation may take before it counts as hung (0: no limit)"
    )
    dedupe: bool = option(True, "drop sibling actions identical after normalize_action")
    fill_attempts: int = option(2, "extra policy calls to fill a node to N unique children after dedup")
    save_screenshots: bool = option(True, "save each node's screenshot as a PNG")
    max_tasks: int | None = option(
        None, "stop after finishing this many new tasks in this run (a rerun resumes)"
    )
    drop_failed_subtrees: bool = option(
        True, "build no pairs from nodes where no child succeeded, nor below them"
    )
    platform: str = option("web", "platform tag written into the step records")

    def __post_init__(self) -> None:
        if isinstance(self.envs, str):
            self.envs = [self.envs]
        self.envs = list(self.envs)
        for env in self.envs:
            if not isinstance(env, str) or "/" not in env:
                raise ValueError(
                    f"CollectConfig.envs holds {env!r}; env ids look like 'miniwob/click-test-2' or 'toy/click-button'"
                )
        repeated = sorted({e for e in self.envs if self.envs.count(e) > 1})
        if repeated:
            raise ValueError(
                f"CollectConfig.envs lists {repeated} more than once; list each env id once (each would be "
                "searched again and then refused as already committed)"
            )
        if isinstance(self.seeds, int | str):
            self.seeds = [self.seeds]
        if any(isinstance(s, str) for s in self.seeds):  # "0-39" or "1,3,7", as on the command line
            from similar_rl.harness.settings import parse_seeds

            try:
                self.seeds = parse_seeds(",".join(str(s) for s in self.seeds))
            except ValueError as exc:
                raise ValueError(f"CollectConfig.seeds: {exc}") from None
        self.seeds = [_as_int(s, "seeds") for s in self.seeds]
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"CollectConfig.seeds has duplicates: {self.seeds}; list each seed once")
        _at_least(self, "n_children", 1, "-n/--children to the number of children per node")
        if self.n_calibration is None:
            self.n_calibration = self.n_children
        _at_least(self, "n_calibration", 1, "n_calibration to the number of calibration episodes")
        _at_least(self, "rollouts_per_child", 1, "--rollouts-per-child to 1 or more")
        _at_least(self, "max_steps", 1, "--max-steps to the episode step budget")
        _at_least(self, "depth_margin", 0, "depth_margin to 0 or more")
        if self.max_depth is not None:
            _at_least(self, "max_depth", 1, "max_depth to 1 or more, or null for the L0 cap only")
        if self.search not in SEARCH_MODES:
            raise ValueError(f"CollectConfig.search is {self.search!r}; choose one of {list(SEARCH_MODES)}")
        _at_least(self, "uct_iterations", 1, "uct_iterations to 1 or more")
        c = self.exploration
        if not (isinstance(c, int | float) and math.isfinite(c) and c >= 0):
            raise ValueError(f"CollectConfig.exploration must be a finite number >= 0, got {c!r}")
        for name in ("policy", "judge", "platform"):
            if not isinstance(value := getattr(self, name), str) or not value:
                raise ValueError(f"CollectConfig.{name} must be a non-empty string, got {value!r}")
        for name in ("policy_kwargs", "judge_kwargs", "env_kwargs"):
            if not isinstance(value := getattr(self, name), dict):
                raise ValueError(f"CollectConfig.{name} must be a mapping, got {type(value).__name__}")
        for name in ("dedupe", "save_screenshots", "drop_failed_subtrees"):
            if not isinstance(value := getattr(self, name), bool):
                raise ValueError(f"CollectConfig.{name} must be true or false, got {value!r}")
        self.seed = _as_int(self.seed, "seed")
        _at_least(self, "workers", 1, "--workers to 1 or more")
        _at_least(self, "max_retries", 0, "max_retries to 0 or more")
        _at_least(self, "fill_attempts", 0, "fill_attempts to 0 or more")
        if not (isinstance(self.step_timeout_s, int | float) and self.step_timeout_s >= 0):
            raise ValueError(
                f"CollectConfig.step_timeout_s must be >= 0 (0 = no limit), got {self.step_timeout_s!r}"
            )
        if self.max_tasks is not None:
            _at_least(self, "max_tasks", 1, "max_tasks to 1 or more, or null for all tasks")

    @property
    def tasks(self) -> list[tuple[str, int]]:
        """All (env id, seed) pairs, seed-major: every family's first seed comes before any family's second, so a
        collection stopped part-way (``max_tasks``, a kill, a session's end) covers every family evenly."""
        return [(env, seed) for seed in self.seeds for env in self.envs]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectConfig:
        if not isinstance(data, dict):
            raise ValueError(f"a collect config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown collect config key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> CollectConfig:
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"CollectConfig.{name} must hold integers, got {value!r}")
    return int(value)


def _at_least(cfg: CollectConfig, name: str, low: int, fix: str) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"CollectConfig.{name} must be an integer, got {value!r} (set {fix})")
    if value < low:
        raise ValueError(f"CollectConfig.{name} must be >= {low}, got {value} (set {fix})")
