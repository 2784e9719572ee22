"""Inference-time scaling with a Similar reward model: best-of-N and reward-guided tree search.

- :class:`BestOfN` scores ``n`` sampled candidate actions in one scorer call and acts on the best.
- :class:`RewardGuidedSearch` looks ahead: beam search over action prefixes, ``depth`` steps deep, replaying
  each prefix (``adapter.rebuild``: ``reset(seed)`` + replay, since GUI envs have no snapshots).
- :func:`run_episode` plays one episode with a policy or a selector; :func:`compare` measures a base policy
  against a scaled selector on several envs and seeds and returns the JSON-ready summary.

A *selector* is anything with ``select(state, history, rng, *, env=None, seed=None) -> (action, scored)``; both
classes here are selectors and also satisfy the :class:`~similar_rl.types.Policy` protocol (``propose`` returns
the selected action), so they can drive any code that takes a policy.

Example:
    >>> import numpy as np
    >>> from similar_rl.envs import make_env
    >>> from similar_rl.policies import make_policy
    >>> class PreferSubmit:  # any object with score(steps) -> list of score dicts is a scorer
    ...     def score(self, steps):
    ...         return [{k: float("Submit" in s.observation_text.splitlines()[int(s.action[10:-1]) - 1])
    ...                  for k in SCORE_KEYS} for s in steps]
    >>> env, adapter = make_env("toy/click-button")
    >>> state, _ = adapter.reset(env, seed=0)
    >>> best = BestOfN(make_policy("random", adapter), PreferSubmit(), n=8)
    >>> action, scored = best.select(state, [], np.random.default_rng(0))
    >>> action, state.element(5).text, len(scored) <= 8
    ('click(ref=5)', 'Submit', True)
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from similar_rl.dimensions import DIMENSIONS, SCORE_KEYS, total_score, validate_weights
from similar_rl.envs.actions import ActionParseError, normalize_action
from similar_rl.envs.base import BaseAdapter, InvalidActionError
from similar_rl.harness import episodes
from similar_rl.harness.env_session import EnvSession
from similar_rl.policies.random import check_positive
from similar_rl.scoring import as_scorer
from similar_rl.types import DimensionScores, GUIState, StepInput

logger = logging.getLogger(__name__)

__all__ = [
    "BestOfN",
    "EpisodeResult",
    "RewardGuidedSearch",
    "ScoredAction",
    "compare",
    "objective_fn",
    "results_table",
    "run_episode",
    "summarize",
    "summarize_arms",
]

Objective = str | Mapping[str, float]


def objective_fn(objective: Objective) -> Callable[[DimensionScores], float]:
    """Turn an objective into a function of a score dict.

    Args:
        objective: ``"total"`` (the model's gated total R), one dimension name (e.g. ``"odds_of_success"``), or a
            dict of dimension weights (a weighted sum of the per-dimension outputs; missing dimensions weigh 0).

    Example:
        >>> scores = {"helpfulness": 0.5, "odds_of_success": 0.2, "efficiency": 0.0, "task_relevance": 1.0,
        ...           "coherence": 1.0, "total": 3.0}
        >>> objective_fn("total")(scores), objective_fn("helpfulness")(scores)
        (3.0, 0.5)
        >>> objective_fn({"helpfulness": 2.0, "coherence": 1.0})(scores)
        2.0
        >>> objective_fn("speed")
        Traceback (most recent call last):
        ...
        ValueError: objective must be 'total', one of ('helpfulness', 'odds_of_success', 'efficiency', 'task_relevance', 'coherence') or a dict of dimension weights, got 'speed'
    """
    if isinstance(objective, str):
        if objective not in SCORE_KEYS:
            raise ValueError(
                f"objective must be 'total', one of {DIMENSIONS} or a dict of dimension weights, got {objective!r}"
            )
        key = objective
        return lambda scores: float(scores[key])
    if isinstance(objective, Mapping):
        weights = validate_weights(objective)
        if not any(weights.values()):
            raise ValueError(
                f"objective weights are all zero: {dict(objective)}; give at least one dimension a weight"
            )
        return lambda scores: total_score(scores, weights)
    raise TypeError(
        f"objective must be a string or a dict of dimension weights, got {type(objective).__name__}"
    )


def _has(obj: Any, method: str) -> bool:
    return callable(getattr(obj, method, None))


def _dedup_key(action: str) -> str:
    try:
        return normalize_action(action)
    except ActionParseError:
        return action.strip()


@dataclass(frozen=True)
class ScoredAction:
    """A candidate action with its scores and the objective value used to rank it."""

    action: str
    scores: DimensionScores
    value: float


class _SelectorPolicy:
    """Lets a selector stand in for a policy: ``propose`` returns the selected action ``n`` times (without the
    env and seed that a :class:`RewardGuidedSearch` with lookahead needs: it raises there)."""

    def propose(self, state: GUIState, history: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
        check_positive(n, "n")
        action, _ = self.select(state, history, rng)  # type: ignore[attr-defined]
        return [action] * n


class BestOfN(_SelectorPolicy):
    """Sample ``n`` actions from ``policy``, score them in one scorer call, act on the best.

    Args:
        policy: proposes candidate actions (:class:`~similar_rl.types.Policy`).
        scorer: a :class:`~similar_rl.scoring.Scorer`, or a model (wrapped in one), or anything with
            ``score(steps)``.
        n: candidates sampled per step.
        objective: what to maximise: ``"total"``, a dimension name, or a dict of dimension weights.
        dedup: drop repeated candidates (compared by their canonical spelling) before scoring; the kept spelling
            is the canonical one. Ties go to the first candidate in sampling order.

    Attributes:
        calls: number of :meth:`select` calls; ``candidates_scored``: candidates sent to the scorer in total.
    """

    def __init__(
        self, policy: Any, scorer: Any, n: int = 5, objective: Objective = "total", dedup: bool = True
    ) -> None:
        if not _has(policy, "propose"):
            raise TypeError(f"policy must have propose(state, history, n, rng), got {type(policy).__name__}")
        self.policy = policy
        self.scorer = as_scorer(scorer)
        self.n = check_positive(n, "n")
        self.objective = objective
        self._value = objective_fn(objective)
        self.dedup = bool(dedup)
        self.calls = 0
        self.candidates_scored = 0

    def __repr__(self) -> str:
        return f"BestOfN(n={self.n}, objective={self.objective!r}, dedup={self.dedup})"

    def candidates(self, state: GUIState, history: Sequence[str], rng: np.random.Generator) -> list[str]:
        """The ``n`` proposed actions, deduplicated if ``dedup``."""
        proposed = list(self.policy.propose(state, list(history), self.n, rng))
        if not proposed:
            raise ValueError(f"{type(self.policy).__name__}.propose returned no action")
        return list(dict.fromkeys(_dedup_key(a) for a in proposed)) if self.dedup else proposed

    def score_candidates(
        self, state: GUIState, history: Sequence[str], actions: Sequence[str]
    ) -> list[ScoredAction]:
        """Score ``actions`` in ``state`` with one scorer call."""
        return self._score([state.step_input(a, list(history)) for a in actions], actions)

    def _score(self, steps: Sequence[StepInput], actions: Sequence[str]) -> list[ScoredAction]:
        """Score ``steps`` (the steps of ``actions``, in any states) with one scorer call."""
        rows = self.scorer.score(steps)
        self.candidates_scored += len(steps)
        return [ScoredAction(a, s, self._value(s)) for a, s in zip(actions, rows, strict=True)]

    def select(
        self,
        state: GUIState,
        history: Sequence[str],
        rng: np.random.Generator,
        *,
        env: Any = None,
        seed: int | None = None,
    ) -> tuple[str, list[ScoredAction]]:
        """Pick the best of ``n`` sampled actions.

        Returns:
            ``(action, scored)``: the chosen action and every scored candidate in sampling order (the chosen one
            is the first with the highest ``value``). ``env`` and ``seed`` are accepted for a uniform selector
            interface and ignored.
        """
        self.calls += 1
        scored = self.score_candidates(state, history, self.candidates(state, history, rng))
        return max(scored, key=lambda s: s.value).action, scored  # max: the first of equals


@dataclass
class _Node:
    """A branch of the tree search: actions after the root, the objective values along it, and its fate."""

    path: tuple[str, ...]
    values: list[float]
    done: bool = False
    env_reward: float | None = None

    @property
    def value(self) -> float:
        return sum(self.values) / len(self.values)


class RewardGuidedSearch(BestOfN):
    """A :class:`BestOfN` that looks ahead: beam search over action prefixes, guided by the reward model.

    At the root, ``n`` candidates are sampled and scored and the best ``beam`` become branches; each further
    level (``depth - 1``) rebuilds the unfinished branches (reset + replay), scores ``n`` candidates from each
    in one call and keeps the best ``beam`` extensions. A branch's value is the mean objective of its actions
    (branches that end early compete fairly); the first action of the best branch is committed and the env
    rebuilt to the episode's state.

    The env's own reward is NOT used by default (a deployed agent does not see rewards). With
    ``use_env_reward=True`` a branch whose lookahead ends the episode adds ``env_reward_weight * reward`` to
    its value, and the final beam's leaves are executed to see whether they end it: an upper bound that
    assumes a simulator, for analysis only.

    Args:
        policy, scorer, objective: as for :class:`BestOfN`.
        adapter: the env's adapter (for ``rebuild``).
        n: candidates sampled per expanded state.
        depth: levels of lookahead (1 = best-of-N).
        beam: branches kept per level.
        use_env_reward: let terminal env rewards of lookahead branches count (default off; see above).
        env_reward_weight: weight of the terminal env reward when ``use_env_reward``.
        search_env: an extra env instance of the same task to do the lookahead in, so the acting env is not
            rebuilt after each search (saves one replay per step; costs a second browser on MiniWoB).

    Attributes:
        calls, rebuilds, candidates_scored: counters.
    """

    def __init__(
        self,
        policy: Any,
        scorer: Any,
        adapter: BaseAdapter,
        n: int = 5,
        depth: int = 2,
        beam: int = 2,
        objective: Objective = "total",
        use_env_reward: bool = False,
        env_reward_weight: float = 10.0,
        search_env: Any = None,
    ) -> None:
        if not _has(adapter, "rebuild"):
            raise TypeError(f"adapter must have rebuild(env, seed, prefix), got {type(adapter).__name__}")
        super().__init__(policy, scorer, n=n, objective=objective, dedup=True)
        self.adapter = adapter
        self.depth = check_positive(depth, "depth")
        self.beam = check_positive(beam, "beam")
        if not math.isfinite(env_reward_weight):
            raise ValueError(f"env_reward_weight must be finite, got {env_reward_weight!r}")
        self.use_env_reward = bool(use_env_reward)
        self.env_reward_weight = float(env_reward_weight)
        self.search_env = search_env
        self.rebuilds = 0

    @property
    def expander(self) -> BestOfN:
        """What samples and scores the candidates: the search itself."""
        return self

    def __repr__(self) -> str:
        return (
            f"RewardGuidedSearch(n={self.n}, depth={self.depth}, beam={self.beam}, "
            f"objective={self.objective!r}, use_env_reward={self.use_env_reward})"
        )

    def _rebuild(self, env: Any, seed: int, prefix: Sequence[str]) -> tuple[GUIState | None, Any]:
        self.rebuilds += 1
        return self.adapter.rebuild(env, seed, list(prefix))

    def _execute(self, env: Any, seed: int, history: Sequence[str], node: _Node) -> GUIState | None:
        """Rebuild ``node``'s state; mark it done (with its env reward) if its last action ended the episode."""
        try:
            state, outcome = self._rebuild(env, seed, [*history, *node.path])
        except (ActionParseError, InvalidActionError) as exc:
            logger.debug("branch %s is not executable (%s); treating it as finished", node.path, exc)
            node.done = True
            return None
        if state is None or (outcome is not None and outcome.done):
            node.done = True
            node.env_reward = outcome.reward if outcome is not None else 0.0
            return None
        return state

    def _rank(self, node: _Node) -> float:
        value = node.value
        if self.use_env_reward and node.env_reward is not None:
            value += self.env_reward_weight * node.env_reward
        return value

    def select(
        self,
        state: GUIState,
        history: Sequence[str],
        rng: np.random.Generator,
        *,
        env: Any = None,
        seed: int | None = None,
    ) -> tuple[str, list[ScoredAction]]:
        """Search from ``state`` (the env after ``reset(seed)`` and ``history``) and return the action to commit.

        Args:
            state, history, rng: the current state, the episode's actions so far (replayed to rebuild search
                nodes) and the policy's randomness.
            env, seed: the acting env (rebuilt to ``history`` before returning unless ``search_env`` is set)
                and its reset seed; needed when ``depth > 1``.

        Returns:
            ``(action, scored)``: the committed action and the scored root candidates.
        """
        self.calls += 1
        history = list(history)
        root = self.score_candidates(state, history, self.candidates(state, history, rng))
        if self.depth == 1 and not self.use_env_reward:
            return max(root, key=lambda s: s.value).action, root
        if env is None or seed is None:
            raise ValueError(
                "RewardGuidedSearch.select needs env= and seed= (the env and its reset seed) to rebuild search "
                "nodes when depth > 1 or use_env_reward=True; use BestOfN for selection without lookahead"
            )
        work_env = self.search_env if self.search_env is not None else env
        ranked = sorted(root, key=lambda s: -s.value)  # stable: ties keep sampling order
        frontier = [_Node((s.action,), [s.value]) for s in ranked[: self.beam]]
        try:
            for _ in range(self.depth - 1):
                frontier = self._expand(work_env, seed, history, frontier, rng)
            for node in [n for n in frontier if self.use_env_reward and not n.done]:
                self._execute(work_env, seed, history, node)  # does the leaf end the episode?
        finally:
            if self.search_env is None:
                self._rebuild(env, seed, history)
        best = max(frontier, key=self._rank)  # first of equals: the order of the previous ranking
        logger.debug("tree search: best branch %s value %.4f", best.path, self._rank(best))
        return best.path[0], root

    def _expand(
        self, env: Any, seed: int, history: list[str], frontier: list[_Node], rng: np.random.Generator
    ) -> list[_Node]:
        """One level: rebuild unfinished branches, sample and score their children, keep the best ``beam``."""
        steps, owners, actions = [], [], []
        kept = [node for node in frontier if node.done]
        for node in [n for n in frontier if not n.done]:
            node_state = self._execute(env, seed, history, node)
            if node_state is None:
                kept.append(node)
                continue
            node_history = [*history, *node.path]
            for action in self.candidates(node_state, node_history, rng):
                steps.append(node_state.step_input(action, node_history))
                owners.append(node)
                actions.append(action)
        scored = zip(owners, self._score(steps, actions) if steps else [], strict=True)
        children = kept + [_Node((*node.path, c.action), [*node.values, c.value]) for node, c in scored]
        children.sort(key=lambda c: -self._rank(c))  # stable: ties keep insertion order
        return children[: self.beam]


# -- episodes and comparisons --------------------------------------------------------------------------------


@dataclass
class EpisodeResult:
    """Outcome of one episode. ``reward`` is the sum of the env's rewards; ``wall_time`` is in seconds."""

    success: bool
    steps: int
    reward: float
    wall_time: float
    actions: list[str] = field(default_factory=list)
    seed: int | None = None
    invalid_actions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_episode(
    env: Any,
    adapter: BaseAdapter,
    selector_or_policy: Any,
    seed: int,
    max_steps: int = 20,
    rng: np.random.Generator | None = None,
) -> EpisodeResult:
    """Play one episode from ``reset(seed)`` with a policy or a selector.

    An action the env cannot execute (malformed, unknown ref) is skipped: it counts as a spent step and in
    ``invalid_actions``, and the state does not change.

    Args:
        env, adapter: from :func:`similar_rl.envs.make_env`.
        selector_or_policy: a selector (``select``; gets ``env``/``seed`` for lookahead) or a policy (``propose``).
        seed, max_steps: the env's reset seed and the step budget (the env may truncate earlier).
        rng: randomness for the policy (default: ``np.random.default_rng(seed)``).

    Example:
        >>> from similar_rl.envs import make_env
        >>> from similar_rl.policies import make_policy
        >>> env, adapter = make_env("toy/click-button")
        >>> result = run_episode(env, adapter, make_policy("heuristic", adapter, temperature=0), seed=0)
        >>> result.success, result.steps, result.actions
        (True, 1, ['click(ref=5)'])
    """
    check_positive(max_steps, "max_steps")
    rng = np.random.default_rng(seed) if rng is None else rng

    def choose(state: GUIState, history: Sequence[str]) -> str:
        agent = selector_or_policy
        if _has(agent, "select"):
            action, _ = agent.select(state, list(history), rng, env=env, seed=seed)
            return action
        if _has(agent, "propose"):
            proposed = agent.propose(state, list(history), 1, rng)
            if not proposed:
                raise ValueError(f"{type(agent).__name__}.propose returned no action")
            return proposed[0]
        raise TypeError(f"expected a policy (propose) or a selector (select), got {type(agent).__name__}")

    e = episodes.run(env, adapter, choose, seed, max_steps, invalid="skip")
    return EpisodeResult(e.success, e.steps, float(e.reward), e.wall_time, e.actions, seed, e.invalid_actions)


def summarize(results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """Success rate, mean steps (all episodes and successful ones), wall time and episode count.

    Example:
        >>> summarize([EpisodeResult(True, 2, 1.0, 0.5), EpisodeResult(False, 4, -1.0, 1.5)])["success_rate"]
        0.5
    """
    n = len(results)
    wins = [r for r in results if r.success]
    wall = float(sum(r.wall_time for r in results))
    return {
        "success_rate": len(wins) / n if n else 0.0,
        "mean_steps": float(np.mean([r.steps for r in results])) if n else 0.0,
        "mean_steps_success": float(np.mean([r.steps for r in wins])) if wins else None,
        "mean_reward": float(np.mean([r.reward for r in results])) if n else 0.0,
        "wall_time_s": wall,
        "wall_time_per_episode_s": wall / n if n else 0.0,
        "episodes": n,
    }


def summarize_arms(base: Sequence[EpisodeResult], scaled: Sequence[EpisodeResult]) -> dict[str, Any]:
    """``{"base": summary, "scaled": summary, "delta": ...}`` of two arms' episodes (see :func:`summarize`);
    ``delta`` holds the scaled-minus-base success rate and the scaled/base wall-time ratio (None without time).

    Example:
        >>> summarize_arms([EpisodeResult(False, 4, 0.0, 1.0)], [EpisodeResult(True, 2, 1.0, 2.0)])["delta"]
        {'success_rate': 1.0, 'wall_time_ratio': 2.0}
    """
    b, s = summarize(base), summarize(scaled)
    ratio = s["wall_time_s"] / b["wall_time_s"] if b["wall_time_s"] > 0 else None
    delta = {"success_rate": s["success_rate"] - b["success_rate"], "wall_time_ratio": ratio}
    return {"base": b, "scaled": s, "delta": delta}


AgentFactory = Callable[[BaseAdapter], Any]


def _bind(agent_or_factory: Any, adapter: BaseAdapter) -> Any:
    """An agent object as is, or a factory ``f(adapter)`` called to build one for this env's adapter."""
    if _has(agent_or_factory, "select") or _has(agent_or_factory, "propose"):
        return agent_or_factory
    if callable(agent_or_factory):
        return agent_or_factory(adapter)
    raise TypeError(
        f"expected a policy, a selector or a factory f(adapter) -> one, got {type(agent_or_factory).__name__}"
    )


def _seeded_episode(
    adapter: BaseAdapter, agent: Any, seed: int, max_steps: int, rng_key: list[int], env: Any
) -> EpisodeResult:
    return run_episode(env, adapter, agent, seed, max_steps, rng=np.random.default_rng(rng_key))


def compare(
    env_ids: Sequence[str],
    seeds: Sequence[int],
    base_policy: Any,
    scaled_selector: Any,
    *,
    max_steps: int = 20,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = False,
    rng_seed: int = 0,
    keep_episodes: bool = True,
    max_retries: int = 2,
) -> dict[str, Any]:
    """Run the base policy and the scaled selector on every env and seed; return the summary.

    Both arms play the same env instance and seeds. Each agent is a policy, a selector or a factory
    ``f(adapter) -> agent`` called once per env (for envs with different adapters, or a tree search, which
    holds its adapter). An episode that hits an env error (see
    :class:`~similar_rl.harness.env_session.EnvSession`) is replayed in a restarted env up to ``max_retries``
    times, then :class:`~similar_rl.harness.env_session.TaskFailed` is raised.

    Returns:
        :func:`summarize_arms`'s dict over all episodes, plus ``per_env`` (``{env_id: {"base": summary,
        "scaled": summary}}``, each summary listing its episodes with ``keep_episodes``), ``env_ids``,
        ``seeds``, ``max_steps``.
    """
    from similar_rl.envs import get_adapter

    env_ids, seeds = list(env_ids), list(seeds)
    if not env_ids:
        raise ValueError("env_ids is empty: give at least one env id, e.g. 'toy/click-button'")
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    from tqdm.auto import tqdm

    per_env: dict[str, Any] = {}
    everything: dict[str, list[EpisodeResult]] = {"base": [], "scaled": []}
    with tqdm(
        total=len(env_ids) * len(seeds) * 2, desc="search", unit="episode", disable=not progress
    ) as bar:
        for env_id in env_ids:
            adapter = get_adapter(env_id)
            session = EnvSession(env_id, adapter, env_kwargs, max_retries=max_retries)
            try:
                arms = {"base": _bind(base_policy, adapter), "scaled": _bind(scaled_selector, adapter)}
                results: dict[str, list[EpisodeResult]] = {"base": [], "scaled": []}
                for seed in seeds:
                    for k, (arm, agent) in enumerate(arms.items()):
                        bar.set_postfix_str(f"{env_id} seed {seed} {arm}")
                        rng_key = [rng_seed, seed, k]  # the same stream on a retry
                        play = functools.partial(_seeded_episode, adapter, agent, seed, max_steps, rng_key)
                        results[arm].append(session.call(f"{arm} episode of {env_id} seed {seed}", play))
                        bar.update(1)
            finally:
                session.close()
            per_env[env_id] = {arm: summarize(arm_results) for arm, arm_results in results.items()}
            for arm, arm_results in results.items():
                everything[arm].extend(arm_results)
                if keep_episodes:
                    per_env[env_id][arm]["episode_log"] = [r.to_dict() for r in arm_results]
            rates = [per_env[env_id][arm]["success_rate"] for arm in arms]
            logger.info("%s: base %.2f -> scaled %.2f success", env_id, *rates)
    return {
        **summarize_arms(everything["base"], everything["scaled"]),
        "per_env": per_env,
        "env_ids": env_ids,
        "seeds": seeds,
        "max_steps": max_steps,
    }


def results_table(result: Mapping[str, Any], base_label: str = "base", scaled_label: str = "scaled") -> str:
    """A markdown table of :func:`compare`'s result: one row per env and an overall row.

    Columns: success rate of each arm and their difference (points), mean steps, and wall time per episode.

    Example:
        >>> arm = {"success_rate": 0.25, "mean_steps": 2.0, "wall_time_s": 1.0, "wall_time_per_episode_s": 0.5,
        ...        "episodes": 2}
        >>> print(results_table({"base": arm, "scaled": {**arm, "success_rate": 0.75}, "per_env": {}}))
        | env | episodes | base success | scaled success | delta (points) | base steps | scaled steps | base s/ep | scaled s/ep |
        |---|---|---|---|---|---|---|---|---|
        | **overall** | 2 | 25.0% | 75.0% | +50.0 | 2.00 | 2.00 | 0.500 | 0.500 |
    """
    head = (
        f"| env | episodes | {base_label} success | {scaled_label} success | delta (points) | {base_label} steps "
        f"| {scaled_label} steps | {base_label} s/ep | {scaled_label} s/ep |"
    )
    lines = [head, "|" + "---|" * 9]

    def row(name: str, base: Mapping[str, Any], scaled: Mapping[str, Any]) -> str:
        delta = 100 * (scaled["success_rate"] - base["success_rate"])
        return (
            f"| {name} | {base['episodes']} | {100 * base['success_rate']:.1f}% | {100 * scaled['success_rate']:.1f}% "
            f"| {delta:+.1f} | {base['mean_steps']:.2f} | {scaled['mean_steps']:.2f} "
            f"| {base['wall_time_per_episode_s']:.3f} | {scaled['wall_time_per_episode_s']:.3f} |"
        )

    rows = [*result.get("per_env", {}).items(), ("**overall**", result)]
    lines += [row(name, arms["base"], arms["scaled"]) for name, arms in rows]
    return "\n".join(lines)
