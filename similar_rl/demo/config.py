"""Settings of ``similar-rl demo``: one dataclass per part, read from ``configs/demo.yaml`` plus overrides.

The YAML holds top-level keys (``model``, ``out``, ``seed``...), one mapping per part (``episodes``,
``search``, ``ppo``) and a ``quick`` mapping of the same shape applied on top with ``--quick``. Unknown keys are
errors that name the key and the valid ones.

Example:
    >>> config = build_demo_config({"episodes": {"families": ["click-button"]}, "seed": 3})
    >>> config.seed, config.episodes.families, config.search.n
    (3, ['click-button'], 5)
    >>> build_demo_config({"search": {"m": 2}})
    Traceback (most recent call last):
    ...
    ValueError: demo config 'search': unknown key(s) ['m'] for SearchPart; valid keys: ['enabled', 'envs', 'max_steps', 'n', 'objective', 'policy', 'policy_kwargs', 'seeds', 'time_budget_s']
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from similar_rl.fields import option
from similar_rl.harness.settings import build_args, check_min, load_yaml

#: The parts of the demo, in the order they run.
PARTS = ("episodes", "search", "ppo")
#: configs/demo.yaml next to the package in a source checkout (``make demo`` runs from there).
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
#: Where the parts send their progress lines (the CLI passes ``print``).
Echo = Callable[[str], None]


@dataclass
class EpisodesPart:
    """Part 1: a few episodes through SimilarRewardWrapper, every step printed with its five scores."""

    enabled: bool = option(True, "run this part")
    families: list[str] = option(
        lambda: ["click-button", "enter-text", "login-user"],
        "MiniWoB++ families (or full env ids such as toy/login-form)",
    )
    episodes_per_family: int = option(1, "episodes per family")
    policy: str = option("heuristic", "policy name (heuristic, random)")
    policy_kwargs: dict[str, Any] = option(dict, "policy options")
    max_steps: int = option(8, "step budget per episode")
    reward_coef: float = option(1.0, "coef of the wrapper's shaped reward (add mode)")
    time_budget_s: float = option(120.0, "stop starting episodes after this")


@dataclass
class SearchPart:
    """Part 2: base policy vs best-of-N with the model on held-out families."""

    enabled: bool = option(True, "run this part")
    envs: list[str] = option(
        lambda: [
            "miniwob/click-test-transfer-v1",
            "miniwob/click-dialog-2-v1",
            "miniwob/identify-shape-v1",
            "miniwob/click-tab-2-easy-v1",
        ],
        "env ids (held out of the default model's training: configs/search_miniwob.yaml)",
    )
    seeds: str = option("0-14", "env seeds: '0-9' or '1,3,7'")
    policy: str = option("random", "base policy")
    policy_kwargs: dict[str, Any] = option(dict, "base policy options")
    n: int = option(5, "candidates per step for best-of-N")
    objective: str = option("total", "'total' or a dimension name")
    max_steps: int = option(10, "step budget per episode")
    time_budget_s: float = option(300.0, "no new env after this")


@dataclass
class PPOPart:
    """Part 3: a short PPO run with dense Similar rewards; ``args`` are :class:`similar_rl.agents.ppo.PPOArgs`."""

    enabled: bool = option(True, "run this part")
    args: dict[str, Any] = option(
        lambda: {
            "env_id": "miniwob/click-test-2-v1",
            "num_envs": 1,
            "num_steps": 32,
            "total_timesteps": 256,
            "num_minibatches": 4,
            "max_episode_steps": 5,
            "reward": "total",
            "reward_coef": 0.1,
        },
        "PPOArgs fields (output_dir, run_name, track and reward_model are set by the demo)",
    )
    min_time_left_s: float = option(60.0, "skip PPO if less than this is left of the total budget")


@dataclass
class _TopLevel:
    """The top-level keys of :class:`DemoConfig` (validated by ``build_args`` apart from the part sections)."""

    model: str = option("default", "'default', a checkpoint folder, or 'none'")
    out: str | None = option(None, "output folder (default runs/demo-<timestamp>)")
    seed: int = option(0, "seed of policies and PPO")
    torch_threads: int = option(1, "torch CPU threads (1 is fastest on busy 2-core boxes)")
    time_budget_s: float = option(540.0, "total budget; parts past it are skipped")
    parts: list[str] = option(lambda: list(PARTS), f"parts to run: {PARTS}")
    wandb: bool = option(True, "log to an offline W&B run")
    wandb_project: str = option("similar-rl", "W&B project")
    wandb_mode: str = option("offline", "offline | online | disabled")
    batch_size: int = option(32, "scorer batch size")


@dataclass
class DemoConfig(_TopLevel):
    """All settings of the demo (see configs/demo.yaml for the documented defaults)."""

    episodes: EpisodesPart = field(default_factory=EpisodesPart)
    search: SearchPart = field(default_factory=SearchPart)
    ppo: PPOPart = field(default_factory=PPOPart)

    def __post_init__(self) -> None:
        bad = [p for p in self.parts if p not in PARTS]
        if bad:
            raise ValueError(f"demo config 'parts': unknown part(s) {bad}; choose from {list(PARTS)}")
        if self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0 (0: torch's default), got {self.torch_threads}")
        if self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be positive, got {self.time_budget_s}")
        check_min("episodes.", self.episodes, ("episodes_per_family", "max_steps"), 1)
        check_min("search.", self.search, ("n", "max_steps"), 1)
        if self.episodes.enabled and not self.episodes.families:
            raise ValueError("episodes.families is empty; list families such as [click-button]")
        if self.search.enabled and not self.search.envs:
            raise ValueError("search.envs is empty; list env ids such as [miniwob/click-dialog-2-v1]")

    def runs(self, part: str) -> bool:
        """Whether ``part`` is listed in ``parts`` and enabled in its section."""
        return part in self.parts and bool(getattr(self, part).enabled)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS: dict[str, type] = {"episodes": EpisodesPart, "search": SearchPart, "ppo": PPOPart}


def merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge ``override`` into ``base`` one level deep for the part sections (later wins).

    Example:
        >>> merge({"seed": 1, "search": {"n": 5, "seeds": "0-9"}}, {"search": {"seeds": "0-1"}})
        {'seed': 1, 'search': {'n': 5, 'seeds': '0-1'}}
    """
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if key in _SECTIONS and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            section, args = dict(out[key]), value.get("args")
            if key == "ppo" and isinstance(args, Mapping) and isinstance(section.get("args"), Mapping):
                value = {**value, "args": {**section["args"], **args}}
            section.update(value)
            out[key] = section
        else:
            out[key] = copy.deepcopy(value)
    return out


def build_demo_config(*layers: Mapping[str, Any] | None) -> DemoConfig:
    """A validated :class:`DemoConfig` from mappings (later layers override earlier ones)."""
    merged = functools.reduce(merge, layers, {})
    sections = {}
    for name, cls in _SECTIONS.items():
        value = merged.pop(name, None) or {}
        if not isinstance(value, Mapping):
            raise ValueError(f"demo config {name!r} must be a mapping, got {type(value).__name__}")
        if name == "ppo" and "args" in value:  # defaults of args are merged, not replaced
            value = {**value, "args": {**PPOPart().args, **dict(value["args"] or {})}}
        try:
            sections[name] = build_args(cls, value)
        except ValueError as exc:
            raise ValueError(f"demo config {name!r}: {exc}") from None
    try:
        top = build_args(_TopLevel, {k: v for k, v in merged.items() if k != "quick"})
    except ValueError as exc:
        raise ValueError(f"demo config: {exc}") from None
    return DemoConfig(**dataclasses.asdict(top), **sections)


def load_demo_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None, quick: bool = False
) -> DemoConfig:
    """Read the YAML at ``path`` (default: configs/demo.yaml when it exists), apply its ``quick`` section when
    ``quick``, then ``overrides``."""
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    data = load_yaml(path) if path is not None else {}
    quick_layer = data.pop("quick", None) or {}
    if not isinstance(quick_layer, Mapping):
        raise ValueError(f"demo config 'quick' must be a mapping, got {type(quick_layer).__name__}")
    return build_demo_config(data, quick_layer if quick else None, overrides)


__all__ = [
    "DEFAULT_CONFIG_PATH",
    "PARTS",
    "DemoConfig",
    "EpisodesPart",
    "PPOPart",
    "SearchPart",
    "build_demo_config",
    "load_demo_config",
    "merge",
]
