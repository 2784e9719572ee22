"""Parts 2 and 3 of the demo: best-of-N vs the base policy on held-out families, and a short PPO run.

Both take a part section of :class:`~similar_rl.demo.config.DemoConfig`, a scorer and an ``echo`` callable for
progress lines, and return JSON-ready dicts that the report and the W&B run read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from similar_rl.demo.config import Echo
from similar_rl.demo.report import _pct
from similar_rl.envs.base import EnvFailure
from similar_rl.types import Scorer


def run_best_of_n(
    part: Any, scorer: Scorer, seed: int, echo: Echo, deadline: float | None = None, progress: bool = True
) -> dict[str, Any]:
    """Base policy vs :class:`~similar_rl.search.BestOfN` on ``part.envs`` x ``part.seeds``.

    Envs run one at a time (one browser each); when ``deadline`` (a ``time.perf_counter()`` value) has passed no
    new env starts, and an env whose browser keeps failing is recorded and skipped.

    Returns:
        :func:`similar_rl.search.compare`'s layout (``base``, ``scaled``, ``per_env``, ``delta``, ``env_ids``,
        ``seeds``, ``max_steps``) over the envs that finished, plus ``n``, ``policy``, ``failures`` and ``skipped``.
    """
    from similar_rl.harness.settings import parse_seeds
    from similar_rl.policies import get_policy_class, make_policy
    from similar_rl.search import BestOfN, EpisodeResult, compare, results_table, summarize_arms

    seeds = parse_seeds(part.seeds) if isinstance(part.seeds, str) else [int(s) for s in part.seeds]
    get_policy_class(part.policy)  # an unknown policy fails before any browser starts

    def base(adapter: Any) -> Any:
        return make_policy(part.policy, adapter, **part.policy_kwargs)

    def scaled(adapter: Any) -> Any:
        return BestOfN(base(adapter), scorer, n=part.n, objective=part.objective)

    episodes: dict[str, list[EpisodeResult]] = {"base": [], "scaled": []}
    per_env: dict[str, Any] = {}
    failures: list[dict[str, str]] = []
    skipped: list[str] = []
    for k, env_id in enumerate(part.envs):
        if deadline is not None and time.perf_counter() > deadline:
            skipped.append(env_id)
            echo(f"  (time budget of this part spent: skipping {env_id})")
            continue
        echo(f"  [{k + 1}/{len(part.envs)}] {env_id}: {len(seeds)} seeds x (base, best-of-{part.n})")
        try:
            result = compare(
                [env_id], seeds, base, scaled, max_steps=part.max_steps, progress=progress, rng_seed=seed
            )
        except EnvFailure as exc:
            echo(f"  ! {env_id}: the browser failed: {exc}\n    skipping {env_id}; the demo goes on")
            failures.append({"part": "search", "env_id": env_id, "error": str(exc)})
            continue
        arms = per_env[env_id] = result["per_env"][env_id]
        for arm in episodes:
            episodes[arm].extend(EpisodeResult(**e) for e in arms[arm]["episode_log"])
        echo(
            f"      base {100 * arms['base']['success_rate']:.0f}% -> best-of-{part.n} "
            f"{100 * arms['scaled']['success_rate']:.0f}% success"
        )
    out: dict[str, Any] = {"per_env": per_env, "env_ids": list(per_env), "seeds": seeds}
    out.update({k: getattr(part, k) for k in ("max_steps", "n", "policy", "objective")})
    out.update(failures=failures, skipped=skipped)
    if per_env:
        out.update(summarize_arms(episodes["base"], episodes["scaled"]))
        out["table"] = results_table(out, base_label=part.policy, scaled_label=f"best-of-{part.n}")
    return out


def success_curve(episodes: list[dict[str, Any]], window: int = 8) -> dict[str, list[float]]:
    """Rolling success rate over the last ``window`` episodes, at each episode's end step.

    Example:
        >>> eps = [{"global_step": 2 * i, "success": float(i % 2)} for i in range(1, 5)]
        >>> success_curve(eps, window=2)["success_rate"]
        [1.0, 0.5, 0.5, 0.5]
    """
    steps = [float(ep["global_step"]) for ep in episodes]
    raw = [float(ep["success"]) for ep in episodes]
    rates = [float(np.mean(raw[max(0, i + 1 - window) : i + 1])) for i in range(len(raw))]
    return {"global_step": steps, "success_rate": rates, "success": raw}


def run_ppo(
    part: Any, scorer: Scorer, seed: int, out_dir: Path, echo: Echo, progress: bool = True
) -> dict[str, Any]:
    """A short PPO run (:func:`similar_rl.agents.ppo.train`) with dense Similar rewards from ``scorer``.

    The demo fixes ``output_dir`` (``out_dir``), ``run_name`` (``ppo``) and ``track`` (off: the demo's own W&B
    run logs the curve); ``scorer=None`` trains on the sparse env reward.

    Returns:
        the trainer's summary plus ``args``, ``episode_log`` (from ``episodes.jsonl``), ``curve`` (rolling success)
        and the success rates of the first and second half of the episodes.
    """
    from similar_rl.agents.ppo import PPOArgs, train
    from similar_rl.harness.settings import build_args

    fixed = {"output_dir": str(out_dir), "run_name": "ppo", "track": False, "progress": progress}
    layer = {"seed": seed, **part.args, **fixed}
    if scorer is None:
        layer["reward"] = "sparse"
    args = build_args(PPOArgs, layer)
    echo(
        f"  PPO on {args.env_id}: {args.num_updates} update(s) x {args.batch_size} env steps, reward={args.reward}"
        f" (coef {args.reward_coef}), {args.num_envs} env(s)"
    )
    summary = train(args, scorer=scorer if args.reward != "sparse" else None)
    run_dir = Path(summary.get("run_dir", out_dir / "ppo"))
    episodes_file = run_dir / "episodes.jsonl"
    lines = episodes_file.read_text().splitlines() if episodes_file.is_file() else []
    episodes = [json.loads(line) for line in lines if line.strip()]
    half = len(episodes) // 2
    first = [e["success"] for e in episodes[:half]]
    second = [e["success"] for e in episodes[half:]]
    out = {
        **{k: _finite(v) for k, v in summary.items() if isinstance(v, int | float | str | bool) or v is None},
        "run_dir": str(run_dir),
        "args": {k: v for k, v in vars(args).items() if k in PPOArgs.__dataclass_fields__},
        "episode_log": episodes,
        "curve": success_curve(episodes),
        "first_half_success_rate": float(np.mean(first)) if first else None,
        "second_half_success_rate": float(np.mean(second)) if second else None,
    }
    echo(
        f"  {len(episodes)} episodes; success {_pct(out['first_half_success_rate'])} (first half) -> "
        f"{_pct(out['second_half_success_rate'])} (second half)"
    )
    return out


def _finite(value: Any) -> Any:
    """NaN/inf floats -> None (strict JSON has no NaN)."""
    return None if isinstance(value, float) and not np.isfinite(value) else value


__all__ = ["run_best_of_n", "run_ppo", "success_curve"]
