"""The search comparison as a job: its settings (defaults, YAML, overrides, validation) and its runner.

``similar-rl search`` and ``benchmarks/best_of_n.py`` both run it: :func:`search_settings` merges the defaults,
a YAML config and explicit overrides and validates them; :func:`run_search` plays the base policy and the policy
scaled by the reward model (:class:`~similar_rl.search.BestOfN` or :class:`~similar_rl.search.RewardGuidedSearch`)
on the same envs and seeds (:func:`~similar_rl.search.compare`).

Example:
    >>> search_settings(None, {"envs": ["toy/click-button"], "seeds": "0-2", "n": 3})["seeds"]
    [0, 1, 2]
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from similar_rl.harness.settings import parse_json_dict, parse_seeds
from similar_rl.types import Scorer

#: Settings and their defaults (also the keys a --config YAML may hold).
DEFAULTS: dict[str, Any] = {
    "envs": [],
    "seeds": list(range(30)),
    "policy": "random",
    "policy_kwargs": {},
    "n": 5,
    "method": "best_of_n",
    "depth": 2,
    "beam": 2,
    "objective": "total",
    "use_env_reward": False,
    "model": "default",
    "max_steps": 20,
    "env_kwargs": {},
    "seed": 0,
    "batch_size": 32,
}
METHODS = ("best_of_n", "tree")
#: YAML keys that document the config but are not settings of this command.
INFO_KEYS = frozenset({"held_out_families", "notes", "benchmark"})


def search_settings(config: str | Path | None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the ``config`` YAML, then ``overrides`` (None values are skipped); validated.

    Raises:
        ValueError: unknown keys, no env ids, a bad method or a non-positive count (named).
    """
    settings = dict(DEFAULTS)
    if config:
        import yaml

        data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{config}: a search config must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(DEFAULTS) - INFO_KEYS)
        if unknown:
            raise ValueError(f"{config}: unknown key(s) {unknown}; known keys: {sorted(DEFAULTS)}")
        settings.update({k: v for k, v in data.items() if k in DEFAULTS})
    unknown = sorted(set(overrides or {}) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown search setting(s) {unknown}; known: {sorted(DEFAULTS)}")
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if isinstance(settings["seeds"], str):
        settings["seeds"] = parse_seeds(settings["seeds"])
    if isinstance(settings["objective"], str) and settings["objective"].lstrip().startswith("{"):
        settings["objective"] = parse_json_dict(settings["objective"])
    if not settings["envs"]:
        raise ValueError(
            "no env ids: pass them (as arguments or --envs ENV [ENV ...]) or a --config YAML with 'envs'"
        )
    if settings["method"] not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {settings['method']!r}")
    for key in ("n", "depth", "beam", "max_steps", "batch_size"):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    return settings


def build_agents(settings: dict[str, Any], scorer: Scorer) -> tuple[Any, Any]:
    """Factories ``f(adapter)`` of the base policy and the scaled selector."""
    from similar_rl.policies import get_policy_class, make_policy
    from similar_rl.search import BestOfN, RewardGuidedSearch

    name, kwargs = settings["policy"], dict(settings["policy_kwargs"])
    get_policy_class(name)  # an unknown name fails here, before any env starts

    def base(adapter: Any) -> Any:
        return make_policy(name, adapter, **kwargs)

    def scaled(adapter: Any) -> Any:
        if settings["method"] == "best_of_n":
            return BestOfN(base(adapter), scorer, n=settings["n"], objective=settings["objective"])
        return RewardGuidedSearch(
            base(adapter),
            scorer,
            adapter,
            n=settings["n"],
            depth=settings["depth"],
            beam=settings["beam"],
            objective=settings["objective"],
            use_env_reward=settings["use_env_reward"],
        )

    return base, scaled


def run_search(settings: dict[str, Any], model: Any = None, progress: bool = True) -> dict[str, Any]:
    """Run the comparison for validated settings; ``model`` (or ``settings['model']``) scores the candidates."""
    from similar_rl.scoring import as_scorer
    from similar_rl.search import compare

    if model is None:
        from similar_rl.model import load_model

        model = load_model(settings["model"])
    scorer = as_scorer(model, batch_size=settings["batch_size"])
    base, scaled = build_agents(settings, scorer)
    start = time.perf_counter()
    result = compare(
        settings["envs"],
        settings["seeds"],
        base,
        scaled,
        max_steps=settings["max_steps"],
        env_kwargs=settings["env_kwargs"],
        progress=progress,
        rng_seed=settings["seed"],
    )
    result["config"] = {k: settings[k] for k in DEFAULTS}
    result["scorer"] = {
        "forward_calls": getattr(scorer, "forward_calls", None),
        "steps_scored": getattr(scorer, "steps_scored", None),
        "cache_hits": getattr(scorer, "cache_hits", None),
    }
    result["total_wall_time_s"] = time.perf_counter() - start
    return result
