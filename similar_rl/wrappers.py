"""Gymnasium wrappers that add Similar's step-wise, five-dimensional rewards to GUI environments.

:class:`SimilarRewardWrapper` wraps one env; :class:`SimilarVectorRewardWrapper` wraps a ``gymnasium.vector`` env
and scores all sub-envs in one batch. Both score each step as (state before the action, history, action) with a
:class:`similar_rl.scoring.Scorer` and write into ``info``:

- ``info["similar"]``: ``{"helpfulness": ..., "odds_of_success": ..., "efficiency": ..., "task_relevance": ...,
  "coherence": ..., "total": ...}`` (for the vector wrapper each value is an array over sub-envs, with the mask
  ``info["_similar"]`` telling which sub-envs were scored this step: a sub-env being auto-reset is not);
- ``info["similar_env_reward"]``: the env's own reward (the returned reward may be shaped);
- ``info["similar_potential"]`` (potential modes only): the potential of the state after the step;
- ``info["vector_reward"]``: the five dimension scores as a float32 array in ``DIMENSIONS`` order, and
  ``info["reward_weights"]`` the weights that scalarise it (MO-Gymnasium's convention; the vector wrapper gives
  ``(num_envs, 5)`` arrays): ``dimensions_weights`` when given (then the shaped term is exactly
  ``vector_reward @ reward_weights``), else the label weights of ``total`` (5, 5, 3, 1, 1). The model's own
  ``total`` comes from its gate, so without ``dimensions_weights`` it is not that dot product.

Reward modes (``shaped`` is ``total``, or ``sum_k w_k * score_k`` when ``dimensions_weights`` is given):

- ``"add"``: ``env_reward + coef * shaped``.
- ``"replace"``: ``coef * shaped``.
- ``"potential"``: ``env_reward + coef * (gamma * Phi(s') - Phi(s))``, potential-based shaping (Ng et al.
  1999), which keeps the optimal policy of the env reward. ``Phi(s)`` is the model's ``potential_key`` score
  (default ``odds_of_success``) of the no-op ``noop()`` in ``s``, which leaves the state as it is: a value of
  the state itself. ``Phi`` after an episode's last step is 0, so the shaping sums to ``-coef * Phi(s_0)``
  (discounted): a bounded amount that repeating steps cannot farm.
- ``"potential_penalty"``: ``"potential"`` minus ``penalty * (max(0, 1 - TR) + max(0, 1 - C))``: steps judged
  irrelevant or incoherent cost a little and relevance or coherence is never paid for. The env's outcome
  reward stays the dominant term at the default ``coef`` and ``penalty``.

The wrappers refuse to overwrite an info key the env already writes (pass other ``info_key``/``env_reward_key``).

Scorer failures (e.g. a remote scorer answering 503): the env's step is recorded *before* scoring, so the
error propagates and the step's reward is lost, but the next ``step`` is scored against the env's real state
and history; a potential that could not be scored is scored with the next step's batch. An env failure inside
``env.step`` leaves history and state unchanged. Actions become strings with :func:`action_string`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from similar_rl.dimensions import DIMENSIONS, SCORE_KEYS, TOTAL_WEIGHTS, total_score, validate_weights
from similar_rl.envs.actions import NOOP, ActionParseError, normalize_action
from similar_rl.envs.base import BaseAdapter
from similar_rl.scoring import as_scorer
from similar_rl.types import INFO_ENV_REWARD, INFO_SCORES, DimensionScores, GUIState

__all__ = ["REWARD_MODES", "SimilarRewardWrapper", "SimilarVectorRewardWrapper", "resolve_adapter"]

REWARD_MODES = ("add", "replace", "potential", "potential_penalty")


def resolve_adapter(env: Any, adapter: BaseAdapter | None = None) -> BaseAdapter:
    """The adapter to use for ``env``: ``adapter`` if given, else the one registered for ``env.spec.id``."""
    if adapter is not None:
        if not isinstance(adapter, BaseAdapter):
            raise TypeError(f"adapter must be a similar_rl.envs.BaseAdapter, got {type(adapter).__name__}")
        return adapter
    from similar_rl.envs import get_adapter

    spec = getattr(env, "spec", None)
    if spec is not None and spec.id:
        with contextlib.suppress(ValueError):  # not a registered id: try the env's class below
            return get_adapter(spec.id)
    unwrapped = getattr(env, "unwrapped", env)
    if type(unwrapped).__module__ == "similar_rl.envs.toy":
        return get_adapter("toy/")
    raise ValueError(
        f"cannot tell which adapter reads {type(unwrapped).__name__} observations; pass adapter=... "
        "(e.g. the one returned by similar_rl.envs.make_env)"
    )


def action_string(action: Any, adapter: BaseAdapter, env: Any = None, state: GUIState | None = None) -> str:
    """The action string of an env action: a string is canonicalised when it parses, else kept as is; a native
    action is converted by the adapter for ``env``'s action space, in ``state``."""
    if isinstance(action, str):
        try:
            return normalize_action(action)
        except ActionParseError:
            return action
    return adapter.to_action_string(action, env=env, state=state)


class _Shaping:
    """The reward arithmetic shared by the single and the vector wrapper."""

    def __init__(
        self,
        reward_mode: str,
        coef: float,
        dimensions_weights: Mapping[str, float] | None,
        gamma: float,
        potential_key: str,
        penalty: float = 0.05,
    ) -> None:
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if not np.isfinite(coef):
            raise ValueError(f"coef must be finite, got {coef!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
        if potential_key not in SCORE_KEYS:
            raise ValueError(f"potential_key must be one of {SCORE_KEYS}, got {potential_key!r}")
        if not np.isfinite(penalty) or penalty < 0:
            raise ValueError(f"penalty must be a finite number >= 0, got {penalty!r}")
        self.penalty = float(penalty)
        self.reward_mode = reward_mode
        self.coef = float(coef)
        self.weights = None if dimensions_weights is None else validate_weights(dimensions_weights)
        # info["reward_weights"]: the given weights, else those of the labels' total, in DIMENSIONS order
        weights = TOTAL_WEIGHTS if self.weights is None else self.weights
        self.total_weights = np.asarray([weights[k] for k in DIMENSIONS], dtype=np.float32)
        self.gamma = float(gamma)
        self.potential_key = potential_key

    @property
    def uses_potential(self) -> bool:
        return self.reward_mode in ("potential", "potential_penalty")

    def cost(self, scores: DimensionScores) -> float:
        """The penalty-only term (>= 0, subtracted): steps judged irrelevant or incoherent."""
        lack = max(0.0, 1.0 - scores["task_relevance"]) + max(0.0, 1.0 - scores["coherence"])
        return self.penalty * lack

    def shaped(self, scores: DimensionScores) -> float:
        return scores["total"] if self.weights is None else total_score(scores, self.weights)

    def reward(self, env_reward: float, scores: DimensionScores, phi: float, phi_next: float) -> float:
        if self.reward_mode == "add":
            return float(env_reward) + self.coef * self.shaped(scores)
        if self.reward_mode == "replace":
            return self.coef * self.shaped(scores)
        shaped = float(env_reward) + self.coef * (self.gamma * phi_next - phi)
        if self.reward_mode == "potential_penalty":
            shaped -= self.cost(scores)
        return shaped


def _check_keys(info: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in info:
            raise ValueError(
                f"the env already writes info[{key!r}]; SimilarRewardWrapper will not overwrite it: "
                "pass info_key=... / env_reward_key=... with other names"
            )


class _RewardSetup:
    """The scorer, adapter, shaping and info keys that the single and the vector wrapper set up alike."""

    def _init_reward(
        self, model_or_scorer: Any, adapter: BaseAdapter, info_key: str, env_reward_key: str, *shaping: Any
    ) -> None:
        """``shaping``: the arguments of :class:`_Shaping`, in its order."""
        self.scorer = as_scorer(model_or_scorer)
        self.adapter = adapter
        self.shaping = _Shaping(*shaping)
        self.info_key = info_key
        self.env_reward_key = env_reward_key
        potential = (f"{info_key}_potential",) if self.shaping.uses_potential else ()
        self._keys = (info_key, env_reward_key, "vector_reward", "reward_weights", *potential)


class SimilarRewardWrapper(_RewardSetup, gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Scores every step with the Similar reward model; writes ``info["similar"]`` and shapes the reward.

    See the module docstring for the info keys and the reward modes.

    Args:
        env: a GUI env whose observations ``adapter`` reads.
        model_or_scorer: a SimilarRewardModel or a :class:`~similar_rl.scoring.Scorer` (shared scorers share
            their cache and counters).
        adapter: the env family's adapter (from :func:`similar_rl.envs.make_env`); None looks it up from
            ``env.spec.id``.
        reward_mode: ``"add"``, ``"replace"`` or ``"potential"``.
        coef: scale of the Similar term.
        dimensions_weights: optional weights of the five dimensions replacing ``total`` in ``add``/``replace``.
        gamma: discount of the potential-based shaping.
        potential_key: which score of ``noop()`` is the potential (``"odds_of_success"`` or another key).
        info_key: info key of the scores; ``env_reward_key``: info key of the env's own reward.

    Example:
        >>> import torch
        >>> from similar_rl.envs import make_env
        >>> class Model:  # stands in for a SimilarRewardModel: every score is 0.5
        ...     def score_steps(self, steps):
        ...         return torch.full((len(steps), 6), 0.5)
        >>> env, adapter = make_env("toy/click-button")
        >>> env = SimilarRewardWrapper(env, Model(), adapter, reward_mode="add", coef=2.0)
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step("noop()")
        >>> reward, info["similar"]["total"], info["similar_env_reward"], env.history
        (1.0, 0.5, 0.0, ['noop()'])
    """

    def __init__(
        self,
        env: gym.Env,
        model_or_scorer: Any,
        adapter: BaseAdapter | None = None,
        reward_mode: str = "add",
        coef: float = 1.0,
        dimensions_weights: Mapping[str, float] | None = None,
        gamma: float = 0.99,
        potential_key: str = "odds_of_success",
        info_key: str = INFO_SCORES,
        env_reward_key: str = INFO_ENV_REWARD,
        penalty: float = 0.05,
    ) -> None:
        settings = dict(
            reward_mode=reward_mode,
            coef=coef,
            dimensions_weights=dimensions_weights,
            gamma=gamma,
            potential_key=potential_key,
            info_key=info_key,
            env_reward_key=env_reward_key,
            penalty=penalty,
        )
        gym.utils.RecordConstructorArgs.__init__(self, **settings)
        gym.Wrapper.__init__(self, env)
        shaping = (reward_mode, coef, dimensions_weights, gamma, potential_key, penalty)
        self._init_reward(model_or_scorer, resolve_adapter(env, adapter), info_key, env_reward_key, *shaping)
        self._state: GUIState | None = None
        self._history: list[str] = []
        # Phi of the current state; None when its scoring failed (the next step scores it)
        self._phi: float | None = 0.0

    @property
    def history(self) -> list[str]:
        """Action strings of the current episode so far."""
        return list(self._history)

    @property
    def state(self) -> GUIState | None:
        """The GUI state the next action will be taken in (None before reset / after the episode ended)."""
        return self._state

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._state = self.adapter.observe(obs, info)
        self._history = []
        self._phi = None if self.shaping.uses_potential else 0.0  # None: unknown if the scorer raises below
        if self.shaping.uses_potential:
            self._phi = self.scorer.score([self._state.step_input(NOOP)])[0][self.shaping.potential_key]
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Steps the env, then scores the step; see the module docstring for what a scorer failure leaves."""
        if self._state is None:
            raise RuntimeError("call reset() before step() (the episode ended or has not started)")
        act = action_string(action, self.adapter, self.env, self._state)
        obs, env_reward, terminated, truncated, info = self.env.step(action)  # raises: history left unchanged
        _check_keys(info, self._keys)
        state, history, phi = self._state, self._history, self._phi
        history_after = [*history, act]
        next_state = None if terminated or truncated else self.adapter.observe(obs, info)
        requests = [state.step_input(act, history)]
        uses_potential, key = self.shaping.uses_potential, self.shaping.potential_key
        score_phi, score_phi_next = uses_potential and phi is None, uses_potential and next_state is not None
        if score_phi:
            requests.append(state.step_input(NOOP, history))
        if score_phi_next:
            requests.append(next_state.step_input(NOOP, history_after))  # type: ignore[union-attr]
        # record the env's move before scoring: a scorer error must not leave the next step scored on a stale state
        self._history, self._state, self._phi = history_after, next_state, (None if uses_potential else 0.0)
        results = self.scorer.score(requests)
        scores = results[0]
        if score_phi:
            phi = results[1][key]
        phi_next = results[-1][key] if score_phi_next else 0.0
        reward = self.shaping.reward(float(env_reward), scores, phi or 0.0, phi_next)
        info[self.info_key] = dict(scores)
        info["vector_reward"] = np.asarray([scores[k] for k in DIMENSIONS], dtype=np.float32)
        info["reward_weights"] = self.shaping.total_weights.copy()
        info[self.env_reward_key] = float(env_reward)
        if uses_potential:
            info[f"{self.info_key}_potential"] = phi_next
        self._phi = phi_next
        return obs, reward, terminated, truncated, info


class SimilarVectorRewardWrapper(_RewardSetup, gym.vector.VectorWrapper):
    """The vector form of :class:`SimilarRewardWrapper`: scores the steps of all sub-envs in one scorer call.

    Same arguments, info keys (arrays over sub-envs, masked by ``info["_similar"]``) and reward modes. Handles
    Gymnasium's autoreset modes: with ``NEXT_STEP`` (the default) a sub-env's step after its episode ended is
    its reset, not scored (its reward passes through, its history restarts); with ``SAME_STEP`` the returned
    observation already is the reset one; with ``DISABLED`` call ``reset(options={"reset_mask": mask})``.

    Example:
        >>> import gymnasium as gym, torch
        >>> from similar_rl.envs.toy import ToyEnv
        >>> class Model:
        ...     def score_steps(self, steps):
        ...         return torch.full((len(steps), 6), 0.5)
        >>> envs = gym.vector.SyncVectorEnv([lambda: ToyEnv("click-button")] * 2)
        >>> envs = SimilarVectorRewardWrapper(envs, Model(), reward_mode="replace")
        >>> obs, info = envs.reset(seed=0)
        >>> obs, rewards, terminated, truncated, info = envs.step(("noop()", "noop()"))
        >>> rewards.tolist(), info["similar"]["total"].tolist(), envs.scorer.forward_calls
        ([0.5, 0.5], [0.5, 0.5], 1)
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        model_or_scorer: Any,
        adapter: BaseAdapter | None = None,
        reward_mode: str = "add",
        coef: float = 1.0,
        dimensions_weights: Mapping[str, float] | None = None,
        gamma: float = 0.99,
        potential_key: str = "odds_of_success",
        info_key: str = INFO_SCORES,
        env_reward_key: str = INFO_ENV_REWARD,
        penalty: float = 0.05,
    ) -> None:
        super().__init__(env)
        if adapter is None:
            sub_envs = getattr(env.unwrapped, "envs", None)
            if not sub_envs:
                raise ValueError("cannot find the adapter of this vector env's sub-envs; pass adapter=...")
            adapter = resolve_adapter(sub_envs[0])
        shaping = (reward_mode, coef, dimensions_weights, gamma, potential_key, penalty)
        self._init_reward(model_or_scorer, adapter, info_key, env_reward_key, *shaping)
        self.autoreset_mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        n = self.num_envs
        self._states: list[GUIState | None] = [None] * n
        self._histories: list[list[str]] = [[] for _ in range(n)]
        self._phis = np.zeros(n)
        self._autoreset = np.zeros(n, dtype=bool)

    def histories(self) -> list[list[str]]:
        """Action strings of each sub-env's current episode."""
        return [list(h) for h in self._histories]

    def _split_obs(self, obs: Any) -> list[Any]:
        return list(gym.vector.utils.iterate(self.env.observation_space, obs))

    def _sub_env(self, i: int) -> Any:
        """Sub-env ``i`` where the vector env exposes it (``SyncVectorEnv``), else None (default action space)."""
        envs = getattr(self.env.unwrapped, "envs", None)
        return envs[i] if envs is not None else None

    def _observe(self, subs: list[Any], info: Mapping[str, Any], i: int) -> GUIState:
        """The state of sub-env ``i`` from the split observations and the vector info."""
        return self.adapter.observe(subs[i], self._sub_info(info, i))

    def _sub_info(self, info: Mapping[str, Any], i: int) -> dict[str, Any]:
        out = {}
        for key, value in info.items():
            if key.startswith("_"):
                continue
            mask = info.get(f"_{key}")
            if mask is None or bool(mask[i]):
                try:
                    out[key] = value[i]
                except (TypeError, IndexError, KeyError):
                    out[key] = value
        return out

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        mask = np.asarray((options or {}).get("reset_mask", np.ones(self.num_envs)), dtype=bool)
        subs = self._split_obs(obs)
        reset_ids = [i for i in range(self.num_envs) if mask[i]]
        for i in reset_ids:
            self._states[i] = self._observe(subs, info, i)
            self._histories[i] = []
        self._phis[mask] = 0.0
        self._autoreset[mask] = False
        if self.shaping.uses_potential and reset_ids:
            self._phis[reset_ids] = np.nan  # stays unknown if the scorer raises; step() then scores it
            results = self.scorer.score([self._states[i].step_input(NOOP) for i in reset_ids])
            self._phis[reset_ids] = [r[self.shaping.potential_key] for r in results]
        return obs, info

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if any(s is None for s, auto in zip(self._states, self._autoreset, strict=True) if not auto):
            raise RuntimeError("call reset() before step()")
        acts = list(gym.vector.utils.iterate(self.env.action_space, actions))
        act_strings = [
            None if self._autoreset[i] else action_string(a, self.adapter, self._sub_env(i), self._states[i])
            for i, a in enumerate(acts)
        ]
        obs, env_rewards, terminated, truncated, info = self.env.step(actions)
        _check_keys(info, self._keys)
        n = self.num_envs
        subs = self._split_obs(obs)
        done = np.logical_or(terminated, truncated)
        scored = [i for i in range(n) if not self._autoreset[i]]
        requests = [self._states[i].step_input(act_strings[i], self._histories[i]) for i in scored]
        next_states = {i: self._observe(subs, info, i) for i in scored if not done[i]}
        same_step = self.autoreset_mode == gym.vector.AutoresetMode.SAME_STEP
        restarted = [i for i in range(n) if self._autoreset[i] or (same_step and done[i])]
        restart_states = {i: self._observe(subs, info, i) for i in restarted}
        potential, key = self.shaping.uses_potential, self.shaping.potential_key
        unknown_phi = [i for i in scored if np.isnan(self._phis[i])] if potential else []
        potential_ids = [i for i in scored if i in next_states] if potential else []
        if potential:
            requests += [self._states[i].step_input(NOOP, self._histories[i]) for i in unknown_phi]
            requests += [
                next_states[i].step_input(NOOP, [*self._histories[i], act_strings[i]]) for i in potential_ids
            ]
            requests += [restart_states[i].step_input(NOOP) for i in restarted]
        phis_before = self._phis.copy()

        # move each sub-env on before scoring (continue, wait for its NEXT_STEP autoreset, or restart), so that a
        # scorer error never leaves the next step scored against a stale state; unknown potentials are NaN
        unknown = np.nan if potential else 0.0
        for i in range(n):
            if i in restart_states:
                self._autoreset[i] = False
                self._states[i], self._histories[i], self._phis[i] = restart_states[i], [], unknown
            elif done[i]:
                self._autoreset[i] = self.autoreset_mode == gym.vector.AutoresetMode.NEXT_STEP
                self._states[i], self._phis[i] = None, 0.0
            else:
                self._histories[i].append(act_strings[i])  # type: ignore[arg-type]
                self._states[i], self._phis[i] = next_states[i], unknown

        results = self.scorer.score(requests) if requests else []  # one batch for every sub-env
        phis = iter([r[key] for r in results[len(scored) :]])
        for i in unknown_phi:
            phis_before[i] = next(phis)
        phi_next = np.zeros(n)
        for i in potential_ids:
            phi_next[i] = self._phis[i] = next(phis)
        for i in restarted if potential else ():
            self._phis[i] = next(phis)

        rewards = np.asarray(env_rewards, dtype=np.float64).copy()
        table = {k: np.zeros(n) for k in SCORE_KEYS}
        for i, scores in zip(scored, results[: len(scored)], strict=True):
            rewards[i] = self.shaping.reward(float(env_rewards[i]), scores, phis_before[i], phi_next[i])
            for k in SCORE_KEYS:
                table[k][i] = scores[k]
        mask, everyone = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
        mask[scored] = True
        entries = [
            (self.info_key, table, mask),
            ("vector_reward", np.stack([table[k] for k in DIMENSIONS], axis=1).astype(np.float32), mask),
            ("reward_weights", np.tile(self.shaping.total_weights, (n, 1)), everyone),
            (self.env_reward_key, np.asarray(env_rewards, dtype=np.float64), everyone),
        ]
        if potential:
            entries.append((f"{self.info_key}_potential", phi_next, mask))
        for name, value, name_mask in entries:  # Gymnasium's vector info: each key with its "_key" mask
            info[name], info[f"_{name}"] = value, name_mask.copy()
        return obs, rewards, terminated, truncated, info
