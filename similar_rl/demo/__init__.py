"""``similar-rl demo``, the main job: scored MiniWoB++ episodes, best-of-N vs base on held-out families, a short
PPO run with dense Similar rewards, an offline W&B run and a markdown + PNG report.

Modules: :mod:`.config` (settings, ``configs/demo.yaml``), :mod:`.episodes` (part 1), :mod:`.parts` (parts 2
and 3), :mod:`.tracking` (W&B), :mod:`.report` (plots and ``report.md``), :mod:`.runner` (:func:`run_demo`).
"""

from __future__ import annotations

from similar_rl.demo.config import DemoConfig, build_demo_config, load_demo_config
from similar_rl.demo.runner import DemoResult, load_reward_model, run_demo

__all__ = [
    "DemoConfig",
    "DemoResult",
    "build_demo_config",
    "load_demo_config",
    "load_reward_model",
    "run_demo",
]
