"""Per-step overhead of the Similar reward wrappers on MiniWoB++ (real Chromium) relative to the bare env step.

The env's own step is timed INSIDE the wrapped run (a thin timing wrapper sits between the env and the Similar
wrapper), so overhead = wrapped step - inner env step on the very same steps; a bare run of the same seeds and
policy is timed too, as a sanity check of the env step cost. The overhead is split into ``adapter.observe``
(reading the next state off the observation), the scorer call (the model) and the rest (bookkeeping).

Settings: ``single`` = :class:`SimilarRewardWrapper` on one env; ``vector`` = :class:`SimilarVectorRewardWrapper` on
a ``SyncVectorEnv`` of ``--num-envs`` envs (one scorer call per vector step for all sub-envs). Each model setting
uses ``reward_mode="add"``. Models: the untrained default-backbone model (MiniLM + EfficientNet-Lite0 at 224 px,
the shipped configuration) and the same at 64 px (``tiny_default_config``). Actions: uniformly random adapter
candidates (fixed RNG), episodes reset on termination. Every MiniWoB state is new (its screenshot differs), so the
state side is encoded at every step: no cache helps here.

Run: ``.venv/bin/python benchmarks/wrapper_overhead.py [--env miniwob/click-button-v1] [--steps 30]``.
Writes benchmarks/results/wrapper_overhead.{json,md}. Target on 2-core CPUs: overhead <= 25% of the env step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from typing import Any

import gymnasium as gym
import numpy as np
from _common import markdown_table, setup, write_results


class Timings:
    """Named lists of durations, one entry per call."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def timed(self, name: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name].append(time.perf_counter() - start)

        return run


class TimedEnv(gym.Wrapper):
    """Times ``env.step`` (records into ``timings['env']``)."""

    def __init__(self, env: gym.Env, timings: Timings) -> None:
        super().__init__(env)
        self.step = timings.timed("env", self.env.step)  # type: ignore[method-assign]


class TimedVectorEnv(gym.vector.VectorWrapper):
    """Times the vector env's ``step`` (records into ``timings['env']``)."""

    def __init__(self, env: gym.vector.VectorEnv, timings: Timings) -> None:
        super().__init__(env)
        self.step = timings.timed("env", self.env.step)  # type: ignore[method-assign]


class TimedScorer:
    """A scorer proxy that times ``score`` (records into ``timings['score']``)."""

    def __init__(self, scorer: Any, timings: Timings) -> None:
        self.scorer = scorer
        self.score = timings.timed("score", scorer.score)


#: Default-backbone methods timed to show where the scorer's time goes.
BACKBONE_PARTS = ("embed_images", "embed_texts")


def instrument_backbone(backbone: Any, timings: Timings) -> None:
    """Time the default backbone's image and text encoders (instance attributes shadowing the methods)."""
    for name in BACKBONE_PARTS:
        setattr(backbone, name, timings.timed(name, getattr(type(backbone), name).__get__(backbone)))


def single_run(env: Any, adapter: Any, scorer: Any | None, steps: int, seed: int) -> Timings:
    """``steps`` random-candidate steps, timed; wrapped by SimilarRewardWrapper when ``scorer`` is given."""
    from similar_rl.wrappers import SimilarRewardWrapper

    timings = Timings()
    rng = np.random.default_rng(seed)
    inner = TimedEnv(env, timings)
    if scorer is not None:
        adapter.observe = timings.timed("observe", type(adapter).observe.__get__(adapter))
        instrument_backbone(scorer.model.backbone, timings)
        outer = SimilarRewardWrapper(inner, TimedScorer(scorer, timings), adapter, reward_mode="add")
    else:
        outer = inner
    obs, info = outer.reset(seed=seed)
    episode = 0
    for _ in range(steps):
        state = outer.state if scorer is not None else adapter.observe(obs, info)
        action = adapter.to_env_action(env, str(rng.choice(adapter.candidates(state))))
        start = time.perf_counter()
        obs, _, terminated, truncated, info = outer.step(action)
        timings.seconds["step"].append(time.perf_counter() - start)
        if terminated or truncated:
            episode += 1
            obs, info = outer.reset(seed=seed + episode)
    if scorer is not None:
        del adapter.observe
        for name in BACKBONE_PARTS:
            delattr(scorer.model.backbone, name)
    return timings


def vector_run(envs: Any, adapter: Any, scorer: Any | None, steps: int, seed: int) -> Timings:
    """``steps`` vector steps of random candidates; wrapped by SimilarVectorRewardWrapper when ``scorer`` is given."""
    from similar_rl.wrappers import SimilarVectorRewardWrapper

    timings = Timings()
    rng = np.random.default_rng(seed)
    inner = TimedVectorEnv(envs, timings)
    if scorer is not None:
        adapter.observe = timings.timed("observe", type(adapter).observe.__get__(adapter))
        instrument_backbone(scorer.model.backbone, timings)
        outer = SimilarVectorRewardWrapper(inner, TimedScorer(scorer, timings), adapter, reward_mode="add")
    else:
        outer = inner
    obs, info = outer.reset(seed=seed)
    n = envs.num_envs
    subs = envs.unwrapped.envs
    space = envs.single_action_space
    for _ in range(steps):
        sub_obs = list(gym.vector.utils.iterate(envs.observation_space, obs))
        actions = []
        for i in range(n):
            state = type(adapter).observe(adapter, sub_obs[i], {})
            actions.append(adapter.to_env_action(subs[i], str(rng.choice(adapter.candidates(state)))))
        batch = gym.vector.utils.concatenate(space, actions, gym.vector.utils.create_empty_array(space, n))
        start = time.perf_counter()
        obs, _, _, _, info = outer.step(batch)
        timings.seconds["step"].append(time.perf_counter() - start)
    if scorer is not None:
        del adapter.observe
        for name in BACKBONE_PARTS:
            delattr(scorer.model.backbone, name)
    return timings


def summarise(name: str, model: str, t: Timings, bare_env_ms: float) -> dict[str, Any]:
    med = {k: 1000 * statistics.median(v) for k, v in t.seconds.items()}
    mean = {k: 1000 * statistics.fmean(v) for k, v in t.seconds.items()}
    steps = len(t.seconds["step"])
    overhead = [s - e for s, e in zip(t.seconds["step"], t.seconds["env"][-steps:], strict=True)]
    overhead_ms = 1000 * statistics.median(overhead)
    env_ms = med["env"]
    return {
        "setting": name,
        "model": model,
        "steps": steps,
        "bare_env_step_ms": round(bare_env_ms, 1),
        "inner_env_step_ms": round(env_ms, 1),
        "wrapped_step_ms": round(med["step"], 1),
        "overhead_ms": round(overhead_ms, 1),
        "overhead_pct_of_env_step": round(100 * overhead_ms / env_ms, 1),
        "observe_ms_per_step": round(sum(t.seconds["observe"]) * 1000 / steps, 1),
        "score_ms_per_step": round(mean.get("score", 0.0) * len(t.seconds["score"]) / steps, 1),
        "image_encoder_ms_per_step": round(sum(t.seconds["embed_images"]) * 1000 / steps, 1),
        "text_encoder_ms_per_step": round(sum(t.seconds["embed_texts"]) * 1000 / steps, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="miniwob/click-button-v1")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per setting")
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-vector", action="store_true")
    args = parser.parse_args()
    info = setup(args.threads)

    from similar_rl.envs import make_env
    from similar_rl.model import SimilarConfig, SimilarRewardModel
    from similar_rl.scoring import Scorer
    from similar_rl.testing import tiny_default_config

    models = {
        "default (224 px)": SimilarRewardModel.build(SimilarConfig()),
        "default (64 px, tiny_default_config)": SimilarRewardModel.build(tiny_default_config()),
    }
    rows: list[dict[str, Any]] = []
    env, adapter = make_env(args.env)
    try:
        single_run(env, adapter, Scorer(models["default (224 px)"]), 2, seed=900)  # warm-up: browser + model
        bare = single_run(env, adapter, None, args.steps, seed=0)
        bare_ms = 1000 * statistics.median(bare.seconds["env"])
        for name, model in models.items():
            t = single_run(env, adapter, Scorer(model), args.steps, seed=0)
            rows.append(summarise("single", name, t, bare_ms))
    finally:
        env.close()
    if not args.skip_vector:
        envs = gym.vector.SyncVectorEnv([lambda: adapter.make_env(args.env) for _ in range(args.num_envs)])
        try:
            vector_run(envs, adapter, None, 2, seed=900)
            bare = vector_run(envs, adapter, None, args.steps, seed=0)
            bare_ms = 1000 * statistics.median(bare.seconds["env"])
            for name, model in models.items():
                t = vector_run(envs, adapter, Scorer(model), args.steps, seed=0)
                rows.append(summarise(f"vector x{args.num_envs}", name, t, bare_ms))
        finally:
            envs.close()
    table = markdown_table(
        [
            "setting",
            "model",
            "steps",
            "bare env step ms",
            "env step inside wrapper ms",
            "wrapped step ms",
            "overhead ms",
            "overhead % of env step",
            "observe ms/step",
            "scorer ms/step",
            "of which image encoder",
            "of which MiniLM",
        ],
        [list(r.values()) for r in rows],
    )
    met = all(r["overhead_pct_of_env_step"] <= 25 for r in rows if r["model"].startswith("default (224"))
    body = (
        f"Env `{args.env}`, random candidate actions, {args.steps} timed steps per setting (medians; observe and "
        "scorer columns are means per step; the last two split the scorer time between EfficientNet-Lite0 and MiniLM). "
        "The vector step covers all sub-envs.\n\n"
        + table
        + f"\n\nTarget: overhead <= 25% of the env step with the default model: **{'met' if met else 'NOT met'}**."
    )
    write_results(
        "wrapper_overhead",
        "Similar reward wrapper overhead on MiniWoB++",
        body,
        {"env": args.env, "steps": args.steps, "num_envs": args.num_envs, "rows": rows, "target_met": met},
        info,
    )


if __name__ == "__main__":
    main()
