"""PPO for GUI agents with Similar's dense step rewards: one loop, readable top to bottom (CleanRL style).

TRL has no PPO trainer for this setting, so this is the project's own. The policy scores each candidate action
of a state (:class:`CandidateAgent` over :mod:`similar_rl.agents.features`). Each env is wrapped with
:class:`similar_rl.wrappers.SimilarRewardWrapper`, which scores every executed step; ``reward`` chooses what
the agent learns from:

- ``sparse``: the env's own reward only (the reward model is not loaded);
- ``total``: env reward + ``reward_coef`` * Similar ``total``;
- ``dims``: env reward + ``reward_coef`` * sum of ``reward_weights[dim]`` * that dimension's score;
- ``potential``: env reward + ``reward_coef`` * (gamma * Phi(s') - Phi(s)), potential-based shaping with
  Phi = the model's ``potential_key`` score of ``noop()`` in a state (one more scored step per env step);
- ``potential_penalty``: ``potential`` minus ``penalty`` * (how irrelevant + how incoherent the model judges the
  step), a cost that is never a bonus (:mod:`similar_rl.wrappers`).

Metrics go to TensorBoard and, with ``track``, to an offline W&B run: ``charts/`` (success rate, episode
length and returns, every reward dimension), ``losses/``. Checkpoints are ``policy.safetensors`` +
``trainer_state.json``; ``resume`` continues from one.

Run it with ``similar-rl agent ppo --config configs/ppo_toy.yaml`` or ``python examples/ppo_gui.py --config ...``.

Example:
    >>> args = PPOArgs(env_id="toy/click-button", reward="sparse", num_envs=2, num_steps=8, total_timesteps=16,
    ...                output_dir=tempfile.mkdtemp(), progress=False, tensorboard=False)
    >>> summary = train(args)
    >>> summary["global_step"]
    16
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import random
import tempfile  # noqa: F401  (used by the doctest above)
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from similar_rl.agents.common import load_checkpoint, load_scorer, play_episodes, save_checkpoint, start_run
from similar_rl.agents.features import FEATURIZERS, make_featurizer
from similar_rl.dimensions import DIMENSIONS, SCORE_KEYS
from similar_rl.envs import make_env
from similar_rl.fields import option
from similar_rl.harness.run_log import RunLogger
from similar_rl.harness.settings import check_choice, check_range, check_settings
from similar_rl.types import GUIState

logger = logging.getLogger(__name__)

REWARD_MODES = ("sparse", "total", "dims", "potential", "potential_penalty")


# --------------------------------------------------------------------------------------------------- settings
@dataclass
class PPOArgs:
    """Settings of a PPO run (every field is a YAML key and a ``--field-name`` option)."""

    env_id: str = option("toy/click-button", "env id, e.g. toy/login-form, miniwob/click-button-v1")
    env_kwargs: dict[str, Any] = option({}, "keyword arguments of make_env")
    num_envs: int = option(4, "parallel envs (each MiniWoB env is a browser)", at_least=1)
    total_timesteps: int = option(4096, "env steps over all envs", at_least=1)
    num_steps: int = option(64, "steps per env per rollout", at_least=1)
    max_episode_steps: int = option(10, "episode cut (treated as terminal)", at_least=1)
    # reward
    reward: str = option("total", "sparse | total | dims | potential | potential_penalty")
    reward_coef: float = option(0.1, "scale of the Similar term", bounds="(-inf, inf)")
    penalty: float = option(
        0.05, "reward=potential_penalty: cost per unit of irrelevance or incoherence", bounds="[0, inf)"
    )
    potential_key: str = option("odds_of_success", "score of noop() used as Phi for reward=potential")
    reward_weights: dict[str, float] = option({}, "dimension -> weight for reward=dims")
    reward_model: str = option("default", "'default' or a saved SimilarRewardModel folder")
    scorer_batch_size: int = option(32, "reward-model batch size", at_least=1)
    # policy
    features: str = option("hashed", "hashed | minilm")
    feature_dim: int = option(128, "hash buckets of the hashed featurizer", at_least=1)
    hidden: int = option(64, "hidden width of the actor and critic", at_least=1)
    max_candidates: int = option(64, "candidates kept per state", at_least=1)
    # PPO
    learning_rate: float = option(2.5e-3, "Adam learning rate", bounds="(0, inf)")
    anneal_lr: bool = option(True, "linearly decay the learning rate")
    gamma: float = option(0.95, "discount", bounds="[0, 1]")
    gae_lambda: float = option(0.9, "GAE lambda", bounds="[0, 1]")
    num_minibatches: int = option(4, "minibatches per epoch", at_least=1)
    update_epochs: int = option(4, "epochs per rollout", at_least=1)
    norm_adv: bool = option(True, "normalise advantages per minibatch")
    clip_coef: float = option(0.2, "surrogate clip", bounds="(0, inf)")
    clip_vloss: bool = option(True, "clip the value loss")
    ent_coef: float = option(0.01, "entropy bonus", bounds="[0, inf)")
    vf_coef: float = option(0.5, "value-loss weight", bounds="[0, inf)")
    max_grad_norm: float = option(0.5, "gradient clip", bounds="(0, inf)")
    target_kl: float | None = option(None, "stop epochs early above this KL", bounds="(0, inf)")
    # run
    seed: int = option(1, "seed of torch, numpy, random and episode seeds")
    torch_deterministic: bool = option(True, "torch.backends.cudnn.deterministic")
    torch_threads: int = option(1, "torch CPU threads (0: torch's default)", at_least=0)
    output_dir: str = option("runs", "runs are written to <output_dir>/<run_name>")
    run_name: str | None = option(None, "default: <env>__ppo__<reward>__<seed>__<time>")
    track: bool = option(False, "log to W&B")
    wandb_project: str = option("similar-rl", "W&B project")
    wandb_mode: str = option("offline", "offline | online | disabled")
    tensorboard: bool = option(True, "write TensorBoard events")
    save_every: int = option(0, "checkpoint every N updates (0: only at the end)", at_least=0)
    resume: str | None = option(None, "checkpoint folder to resume from")
    progress: bool = option(True, "show a progress bar")
    success_window: int = option(50, "episodes in the rolling success rate", at_least=1)

    def __post_init__(self) -> None:
        check_choice("reward", self.reward, REWARD_MODES)
        if self.reward == "dims":
            if not self.reward_weights:
                raise ValueError(
                    "reward=dims needs reward_weights, e.g. --reward-weights '{helpfulness: 0.5}'"
                )
            bad = sorted(set(self.reward_weights) - set(DIMENSIONS))
            if bad:
                raise ValueError(
                    f"reward_weights has unknown dimension(s) {bad}; choose from {list(DIMENSIONS)}"
                )
        check_choice("potential_key", self.potential_key, list(SCORE_KEYS))
        check_choice("features", self.features, FEATURIZERS)
        check_settings(self)
        for dim, weight in self.reward_weights.items():
            check_range("PPOArgs", f"reward_weights[{dim!r}]", weight)
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps ({self.batch_size}) must be divisible by num_minibatches ({self.num_minibatches})"
            )

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.batch_size)


# ------------------------------------------------------------------------------------------------- the agent
def layer_init(layer: nn.Linear, std: float = float(np.sqrt(2)), bias: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class CandidateAgent(nn.Module):
    """Actor: a logit per (state, candidate) feature row, masked softmax. Critic: MLP over the state's
    masked mean and max of candidate features."""

    def __init__(self, n_features: int, hidden: int = 64):
        super().__init__()
        self.actor = nn.Sequential(
            layer_init(nn.Linear(n_features, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, 1), std=0.01),
        )
        self.critic = nn.Sequential(
            layer_init(nn.Linear(2 * n_features, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, 1), std=1.0),
        )

    def get_value(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(feats.dtype)
        mean = (feats * m).sum(1) / m.sum(1).clamp(min=1.0)
        maxed = feats.masked_fill(~mask.unsqueeze(-1), -1e4).amax(1)
        return self.critic(torch.cat([mean, maxed], dim=-1)).squeeze(-1)

    def get_action_and_value(
        self,
        feats: torch.Tensor,
        mask: torch.Tensor,
        action: torch.Tensor | None = None,
        greedy: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """feats (B, K, F), mask (B, K) -> action (B,), log-prob, entropy, value."""
        logits = self.actor(feats).squeeze(-1).masked_fill(~mask, torch.finfo(feats.dtype).min)
        dist = Categorical(logits=logits)
        if action is None:
            action = logits.argmax(-1) if greedy else dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.get_value(feats, mask)


def pad_features(rows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-state (K_i, F) feature arrays into (B, K_max, F) and a boolean mask (B, K_max)."""
    feats = pad_sequence([torch.as_tensor(r, dtype=torch.float32) for r in rows], batch_first=True)
    mask = pad_sequence([torch.ones(len(r), dtype=torch.bool) for r in rows], batch_first=True)
    return feats, mask


# ------------------------------------------------------------------------------------------- env and reward
def make_envs(args: PPOArgs, scorer: Any) -> list[tuple[Any, Any]]:
    """``num_envs`` (env, adapter) pairs; unless reward=sparse each env is wrapped with SimilarRewardWrapper,
    which shapes the reward as ``reward`` asks and keeps the env's own in ``info["similar_env_reward"]``."""
    envs = []
    for _ in range(args.num_envs):
        env, adapter = make_env(args.env_id, **args.env_kwargs)
        if args.reward != "sparse":
            from similar_rl.wrappers import SimilarRewardWrapper

            env = SimilarRewardWrapper(
                env,
                scorer,
                adapter=adapter,
                reward_mode=args.reward if args.reward.startswith("potential") else "add",
                coef=args.reward_coef,
                dimensions_weights=args.reward_weights if args.reward == "dims" else None,
                gamma=args.gamma,
                potential_key=args.potential_key,
                penalty=args.penalty,
            )
        envs.append((env, adapter))
    return envs


class EpisodeStats:
    """Per-env running episode sums and a window of finished episodes."""

    def __init__(self, num_envs: int, window: int):
        self.running = [Counter() for _ in range(num_envs)]
        self.recent: deque[dict[str, float]] = deque(maxlen=window)

    def step(self, i: int, env_reward: float, reward: float, scores: dict[str, float] | None) -> None:
        dims = {f"similar_{k}": scores[k] for k in SCORE_KEYS} if scores else {}
        self.running[i].update(env_return=env_reward, shaped_return=reward, length=1, **dims)

    def finish(self, i: int, success: bool, global_step: int) -> dict[str, float]:
        sums, self.running[i] = self.running[i], Counter()
        length = sums["length"]
        ep = {
            "global_step": global_step,
            "success": float(success),
            "length": length,
            "env_return": float(sums["env_return"]),
            "shaped_return": float(sums["shaped_return"]),
            **{f"similar_{k}": sums[f"similar_{k}"] / max(length, 1) for k in SCORE_KEYS},
        }
        self.recent.append(ep)
        return ep

    def charts(self) -> dict[str, float]:
        names = {"success_rate": "success", "episodic_length": "length", "episodic_return": "env_return"}
        names |= {"shaped_return": "shaped_return", **{f"similar/{k}": f"similar_{k}" for k in SCORE_KEYS}}
        if not self.recent:
            return {}
        return {
            f"charts/{name}": float(np.mean([e[key] for e in self.recent])) for name, key in names.items()
        }


# ---------------------------------------------------------------------------------------------- the PPO loop
def train(args: PPOArgs, scorer: Any = None) -> dict[str, Any]:
    """Run PPO as ``args`` say; return a summary (``global_step``, ``episodes``, ``success_rate``, ``run_dir``,
    ``checkpoint``). ``scorer`` overrides ``reward_model`` with a ready Scorer (or SimilarRewardModel)."""
    default_name = f"{args.env_id.replace('/', '-')}__ppo__{args.reward}__{args.seed}__{int(time.time())}"
    run_name, run_dir = start_run(args, default_name)

    # seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)  # tiny matrices: more threads only add contention
    rng = np.random.default_rng(args.seed)

    # reward model, envs, policy
    if args.reward != "sparse" and scorer is None:
        scorer = load_scorer(args.reward_model, batch_size=args.scorer_batch_size)
    elif args.reward != "sparse":
        from similar_rl.scoring import as_scorer

        scorer = as_scorer(scorer)
    else:
        scorer = None
    with contextlib.ExitStack() as cleanup:  # browsers, files and loggers close even if training raises
        envs = make_envs(args, scorer)
        for env, _ in envs:
            cleanup.callback(env.close)
        featurizer = make_featurizer(args.features, args.feature_dim)
        agent = CandidateAgent(featurizer.n_features, args.hidden)
        optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

        global_step, start_update, episodes = 0, 1, 0
        if args.resume:
            state = load_checkpoint(args.resume, agent, optimizer, restore_rng=True)
            global_step, start_update, episodes = state["global_step"], state["update"] + 1, state["episodes"]
            rng.bit_generator.state = state["numpy_rng"]
            logger.info(
                "resumed from %s at env step %d (update %d)", args.resume, global_step, state["update"]
            )

        run_logger = RunLogger(
            run_dir,
            dataclasses.asdict(args),
            tensorboard=args.tensorboard,
            wandb=args.track,
            project=args.wandb_project,
            name=run_name,
            wandb_mode=args.wandb_mode,
        )
        cleanup.callback(run_logger.close)
        similar_logger = None
        if args.reward != "sparse":  # per-dimension step and episode means of the Similar scores
            from similar_rl.tracking import GymRewardLogger

            backends = (("wandb",) if args.track else ()) + (("tensorboard",) if args.tensorboard else ())
            similar_logger = GymRewardLogger(backends=backends, log_dir=str(run_dir / "tb"))
            cleanup.callback(similar_logger.close)
        episodes_file = cleanup.enter_context((run_dir / "episodes.jsonl").open("a"))
        stats = EpisodeStats(args.num_envs, args.success_window)

        def reset(i: int) -> GUIState:
            env, adapter = envs[i]
            return adapter.reset(env, seed=int(rng.integers(2**31 - 1)))[0]

        states = [reset(i) for i in range(args.num_envs)]
        histories: list[list[str]] = [[] for _ in range(args.num_envs)]

        def observe(i: int) -> tuple[list[str], np.ndarray]:
            cands = envs[i][1].candidates(states[i])[: args.max_candidates] or ["noop()"]
            return cands, featurizer.featurize(states[i], histories[i], cands)

        total = args.num_updates * args.batch_size
        bar = cleanup.enter_context(
            tqdm(total=total, initial=global_step, disable=not args.progress, unit="step")
        )
        checkpoint = None
        start_time = time.time()
        for update in range(start_update, args.num_updates + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = (
                    1.0 - (update - 1.0) / args.num_updates
                ) * args.learning_rate

            # ---- rollout: num_steps steps in every env
            feats_buf: list[np.ndarray] = []
            actions = torch.zeros((args.num_steps, args.num_envs), dtype=torch.long)
            logprobs, values, rewards, dones = torch.zeros((4, args.num_steps, args.num_envs))
            for t in range(args.num_steps):
                global_step += args.num_envs
                cands, rows = zip(*map(observe, range(args.num_envs)), strict=True)
                feats, mask = pad_features(rows)
                with torch.no_grad():
                    action, logprob, _, value = agent.get_action_and_value(feats, mask)
                feats_buf.extend(rows)
                actions[t], logprobs[t], values[t] = action, logprob, value
                for i, (env, adapter) in enumerate(envs):
                    chosen = cands[i][int(action[i])]
                    outcome = adapter.step(env, chosen)
                    scores = outcome.info.get("similar")  # None when reward=sparse (no wrapper)
                    env_reward = outcome.info.get("similar_env_reward", outcome.reward)
                    stats.step(i, env_reward, outcome.reward, scores)
                    rewards[t, i] = outcome.reward
                    histories[i].append(chosen)
                    cut = not outcome.done and len(histories[i]) >= args.max_episode_steps
                    if similar_logger is not None:
                        similar_logger.record(
                            outcome.info, outcome.terminated, outcome.truncated or cut, outcome.reward, chosen
                        )
                    if outcome.done or cut:
                        dones[t, i] = 1.0
                        episodes += 1
                        ep = stats.finish(i, outcome.success, global_step)
                        episodes_file.write(json.dumps(ep) + "\n")
                        states[i], histories[i] = reset(i), []
                    else:
                        states[i] = outcome.state
                bar.update(args.num_envs)
            episodes_file.flush()

            # ---- bootstrap and GAE (an episode cut is treated as terminal)
            with torch.no_grad():
                next_value = agent.get_value(*pad_features([observe(i)[1] for i in range(args.num_envs)]))
                advantages = torch.zeros_like(rewards)
                lastgaelam = torch.zeros(args.num_envs)
                for t in reversed(range(args.num_steps)):
                    nextvalues = next_value if t == args.num_steps - 1 else values[t + 1]
                    nonterminal = 1.0 - dones[t]
                    delta = rewards[t] + args.gamma * nextvalues * nonterminal - values[t]
                    lastgaelam = delta + args.gamma * args.gae_lambda * nonterminal * lastgaelam
                    advantages[t] = lastgaelam
                returns = advantages + values

            # ---- flatten (row t * num_envs + i matches feats_buf order) and optimise
            b_feats, b_mask = pad_features(feats_buf)
            b_actions, b_logprobs = actions.reshape(-1), logprobs.reshape(-1)
            b_adv, b_returns, b_values = advantages.reshape(-1), returns.reshape(-1), values.reshape(-1)
            minibatch_size = args.batch_size // args.num_minibatches
            clipfracs, approx_kl = [], torch.tensor(0.0)
            for _epoch in range(args.update_epochs):
                perm = torch.from_numpy(rng.permutation(args.batch_size))
                for start in range(0, args.batch_size, minibatch_size):
                    mb = perm[start : start + minibatch_size]
                    _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                        b_feats[mb], b_mask[mb], b_actions[mb]
                    )
                    logratio = newlogprob - b_logprobs[mb]
                    ratio = logratio.exp()
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - logratio).mean()
                        clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())
                    mb_adv = b_adv[mb]
                    if args.norm_adv and len(mb) > 1:
                        mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                    pg_loss = torch.max(
                        -mb_adv * ratio, -mb_adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                    ).mean()
                    if args.clip_vloss:
                        v_unclipped = (newvalue - b_returns[mb]) ** 2
                        v_clipped = b_values[mb] + torch.clamp(
                            newvalue - b_values[mb], -args.clip_coef, args.clip_coef
                        )
                        v_loss = 0.5 * torch.max(v_unclipped, (v_clipped - b_returns[mb]) ** 2).mean()
                    else:
                        v_loss = 0.5 * ((newvalue - b_returns[mb]) ** 2).mean()
                    entropy_loss = entropy.mean()
                    loss = pg_loss - args.ent_coef * entropy_loss + args.vf_coef * v_loss
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()
                if args.target_kl is not None and approx_kl > args.target_kl:
                    break

            # ---- log and checkpoint
            var_y = b_returns.var()
            explained_var = float("nan") if var_y == 0 else float(1 - (b_returns - b_values).var() / var_y)
            metrics = {
                "charts/learning_rate": optimizer.param_groups[0]["lr"],
                "charts/episodes": episodes,
                "charts/step_reward": float(rewards.mean()),
                "charts/SPS": (global_step - (start_update - 1) * args.batch_size)
                / max(time.time() - start_time, 1e-9),
                "losses/value_loss": v_loss.item(),
                "losses/policy_loss": pg_loss.item(),
                "losses/entropy": entropy_loss.item(),
                "losses/approx_kl": float(approx_kl),
                "losses/clipfrac": float(np.mean(clipfracs)),
                "losses/explained_variance": explained_var,
                **stats.charts(),
            }
            run_logger.log(metrics, global_step)
            if similar_logger is not None:
                similar_logger.dump(step=global_step)
            if "charts/success_rate" in metrics:
                bar.set_postfix(
                    success=f"{metrics['charts/success_rate']:.2f}",
                    ep_len=f"{metrics['charts/episodic_length']:.1f}",
                )
            last = update == args.num_updates
            if last or (args.save_every and update % args.save_every == 0):
                checkpoint = save_checkpoint(
                    run_dir / "checkpoint",
                    agent,
                    optimizer,
                    {
                        "args": dataclasses.asdict(args),
                        "global_step": global_step,
                        "update": update,
                        "episodes": episodes,
                        "numpy_rng": rng.bit_generator.state,
                        "n_features": featurizer.n_features,
                    },
                )

    charts = stats.charts()
    summary = {
        "run_dir": str(run_dir),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "global_step": global_step,
        "episodes": episodes,
        "success_rate": charts.get("charts/success_rate", float("nan")),
        "episodic_length": charts.get("charts/episodic_length", float("nan")),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("PPO finished: %s", summary)
    return summary


def load_policy(checkpoint: str | Path) -> tuple[CandidateAgent, Any, PPOArgs]:
    """Rebuild the agent, its featurizer and its settings from a checkpoint folder (for evaluation)."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    fields = {f.name for f in dataclasses.fields(PPOArgs)}
    args = PPOArgs(**{k: v for k, v in state["args"].items() if k in fields})
    featurizer = make_featurizer(args.features, args.feature_dim)
    agent = CandidateAgent(featurizer.n_features, args.hidden)
    load_checkpoint(checkpoint, agent)
    return agent, featurizer, args


def evaluate(
    checkpoint: str | Path, episodes: int = 20, seed: int = 10_000, env_id: str | None = None
) -> dict[str, float]:
    """Greedy success rate and mean episode length of a saved policy on fresh seeds."""
    agent, featurizer, args = load_policy(checkpoint)
    env, adapter = make_env(env_id or args.env_id, **args.env_kwargs)

    def choose(state: Any, history: Any) -> str:
        cands = adapter.candidates(state)[: args.max_candidates] or ["noop()"]
        with torch.no_grad():
            action, *_ = agent.get_action_and_value(
                *pad_features([featurizer.featurize(state, list(history), cands)]), greedy=True
            )
        return cands[int(action[0])]

    played = play_episodes(env, adapter, choose, seed, episodes, args.max_episode_steps)
    return {
        "success_rate": float(np.mean([float(e.success) for e in played])),
        "episodic_length": float(np.mean([e.steps for e in played])),
        "episodes": episodes,
    }


__all__ = ["REWARD_MODES", "CandidateAgent", "PPOArgs", "evaluate", "load_policy", "train"]
