"""The search comparison as a job: its settings (defaults, YAML, overrides, validation) and its runner.

``similar-rl search`` and ``benchmarks/best_of_n.py`` both run it: :func:`search_settings`, then
:func:`run_search`.

Example:
    >>> search_settings(None, {"envs": ["toy/click-button"], "seeds": "0-2", "n": 3}).seeds
    [0, 1, 2]
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from similar_rl.fields import option
from similar_rl.harness.settings import build_args, check_choice, load_yaml, parse_json_dict, parse_seeds
from similar_rl.types import Scorer

METHODS = ("best_of_n", "tree")
#: YAML keys that document the config but are not settings of this command.
INFO_KEYS = frozenset({"held_out_families", "notes", "benchmark"})


@dataclass
class SearchSettings:
    """Settings of one search comparison (``similar-rl search``; ``benchmarks/best_of_n.py``)."""

    envs: list[str] = option([], "env ids, e.g. miniwob/click-button-v1 toy/login-form")
    seeds: list[int] = option(list(range(30)), "env seeds: '0-29' or '1,3,7'")
    policy: str = option("random", "base policy: random, heuristic, hf")
    policy_kwargs: dict[str, Any] = option({}, "base policy options, e.g. '{temperature: 2.0}'")
    n: int = option(5, "candidates sampled per step")
    method: str = option("best_of_n", "best_of_n or tree (reward-guided beam search)")
    depth: int = option(2, "tree: lookahead levels")
    beam: int = option(2, "tree: branches kept per level")
    objective: str | dict[str, float] = option(
        "total", "what to maximise: total, a dimension name, or weights like '{helpfulness: 1}'"
    )
    use_env_reward: bool = option(
        False,
        "tree: lookahead branches that end the episode use the env's reward (a real agent sees no "
        "reward at test time: this gives a simulator-assisted upper bound)",
    )
    model: str = option("default", "reward model: a checkpoint folder, or 'default' (the shipped one)")
    max_steps: int = option(20, "step budget per episode")
    env_kwargs: dict[str, Any] = option({}, "make_env options")
    seed: int = option(0, "random seed of the policies' sampling")
    batch_size: int = option(32, "scorer batch size")

    def __post_init__(self) -> None:
        if any(isinstance(s, str) for s in self.seeds):
            self.seeds = parse_seeds(",".join(str(s) for s in self.seeds))
        if isinstance(self.objective, str) and self.objective.lstrip().startswith("{"):
            self.objective = parse_json_dict(self.objective)
        if not self.envs:
            raise ValueError(
                "no env ids: pass them (as arguments or --envs ENV [ENV ...]) or a --config YAML with 'envs'"
            )
        check_choice("method", self.method, METHODS)
        for key in ("n", "depth", "beam", "max_steps", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")


def search_settings(config: str | Path | None, overrides: dict[str, Any] | None = None) -> SearchSettings:
    """Defaults, then the ``config`` YAML (its :data:`INFO_KEYS` ignored), then ``overrides``; validated.

    Raises:
        ValueError: unknown keys, no env ids, a bad method or a non-positive count (named).
    """
    data = {k: v for k, v in load_yaml(config).items() if k not in INFO_KEYS} if config else None
    try:
        return build_args(SearchSettings, data, overrides)
    except ValueError as exc:
        raise ValueError(f"{config}: {exc}" if config else str(exc)) from None


def build_agents(settings: SearchSettings, scorer: Scorer) -> tuple[Any, Any]:
    """Factories ``f(adapter)`` of the base policy and the scaled selector."""
    from similar_rl.policies import get_policy_class, make_policy
    from similar_rl.search import BestOfN, RewardGuidedSearch

    name, kwargs = settings.policy, dict(settings.policy_kwargs)
    get_policy_class(name)  # an unknown name fails here, before any env starts

    def base(adapter: Any) -> Any:
        return make_policy(name, adapter, **kwargs)

    def scaled(adapter: Any) -> Any:
        if settings.method == "best_of_n":
            return BestOfN(base(adapter), scorer, n=settings.n, objective=settings.objective)
        return RewardGuidedSearch(
            base(adapter),
            scorer,
            adapter,
            n=settings.n,
            depth=settings.depth,
            beam=settings.beam,
            objective=settings.objective,
            use_env_reward=settings.use_env_reward,
        )

    return base, scaled


def run_search(settings: SearchSettings, model: Any = None, progress: bool = True) -> dict[str, Any]:
    """Play the base policy and the scaled one (best-of-N or tree search) on the same envs and seeds
    (:func:`~similar_rl.search.compare`); ``model`` (or ``settings.model``) scores the candidates."""
    from similar_rl.scoring import as_scorer
    from similar_rl.search import compare

    if model is None:
        from similar_rl.model import load_model

        model = load_model(settings.model)
    scorer = as_scorer(model, batch_size=settings.batch_size)
    base, scaled = build_agents(settings, scorer)
    start = time.perf_counter()
    result = compare(
        settings.envs,
        settings.seeds,
        base,
        scaled,
        max_steps=settings.max_steps,
        env_kwargs=settings.env_kwargs,
        progress=progress,
        rng_seed=settings.seed,
    )
    result["config"] = dataclasses.asdict(settings)
    result["scorer"] = {k: getattr(scorer, k, None) for k in ("forward_calls", "steps_scored", "cache_hits")}
    result["total_wall_time_s"] = time.perf_counter() - start
    return result
