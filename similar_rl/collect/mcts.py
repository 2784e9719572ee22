"""MCTS-P tree search over one task (env id, seed): calibration, expansion, rollouts, labels, judging.

Two schedules share one node expansion (:meth:`TaskSearch.expand`):

* ``greedy`` (the authors' MCTS-P): at depth t expand N children of the current node, roll each out to the end,
  label and judge them, then advance to the best child (highest OS, then H, then E, then TR + C; earliest on a
  tie) until the chosen step ends the episode or the depth cap ``ceil(L0) + depth_margin`` is reached.
* ``uct``: ``uct_iterations`` expansions; each descends from the root by UCT (``Q + c*sqrt(ln N / n)`` with
  ``Q`` the mean rollout success below a node), expands the leaf it reaches, and backs the children's rollout
  successes up to the root (visit counts and values). AC is tracked per tree node, i.e. per path.

GUI envs have no snapshot: every child is reached by ``adapter.rebuild(env, seed, prefix)``. Env operations run
through :class:`~similar_rl.harness.env_session.EnvSession`, which enforces a wall-clock deadline, rebuilds the env after an env failure
(:class:`~similar_rl.envs.base.EnvFailure`, Selenium's ``WebDriverException``, timeouts, lost connections) and
retries the operation a bounded number of times, keeping a log of the failures. Each operation draws its random
numbers from a generator derived from (config seed, task id, operation key), so a retried operation, a resumed
run and a run with more workers all produce the same tree.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from similar_rl.collect.config import CollectConfig
from similar_rl.collect.labels import ChildLabels, best_child, calibrate_l0, label_children
from similar_rl.envs.actions import ActionParseError, normalize_action
from similar_rl.envs.base import EnvFailure, InvalidActionError
from similar_rl.harness.env_session import EnvSession, TaskFailed
from similar_rl.types import GUIState, Judge, JudgeVerdict, Policy

logger = logging.getLogger(__name__)


def task_id_for(env_id: str, seed: int) -> str:
    """The id of task (env id, seed).

    Example:
        >>> task_id_for("toy/login-form", 3)
        'toy/login-form@3'
    """
    return f"{env_id}@{seed}"


def _digest(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return h.hexdigest()


def node_id_for(prefix: Sequence[str]) -> str:
    """Id of the node reached by ``prefix`` (unique within a task): depth and a hash of the actions.

    Example:
        >>> node_id_for([])
        'd0-root'
        >>> node_id_for(["click(ref=2)"]).startswith("d1-")
        True
    """
    return "d0-root" if not prefix else f"d{len(prefix)}-{_digest(*prefix)}"


def make_rng(base_seed: int, task_id: str, *key: Any) -> np.random.Generator:
    """The generator of one operation: derived from the config seed, the task id and the operation key."""
    words = [int(w, 16) for w in (_digest(task_id)[:8], _digest(task_id)[8:], _digest(*key)[:8])]
    return np.random.default_rng(np.random.SeedSequence([int(base_seed) & 0xFFFFFFFF, *words]))


@dataclass
class Rollout:
    """One episode: the actions from the initial state, whether the task succeeded and how it ended."""

    actions: list[str]
    success: bool
    end: str  # "success", "failure" (env ended it), "truncated", "budget", "invalid_action", "no_action"

    @property
    def length(self) -> int:
        return len(self.actions)

    def to_dict(self) -> dict[str, Any]:
        return {"actions": list(self.actions), "success": self.success, "end": self.end}


@dataclass
class ChildResult:
    """One labelled child of a node."""

    action: str
    rollouts: list[Rollout]
    stats: ChildLabels
    verdict: JudgeVerdict
    terminal: bool  # the child's own step ended the episode

    @property
    def labels(self) -> dict[str, float | None]:
        return self.stats.labels(self.verdict.task_relevance, self.verdict.coherence)

    def select_key(self) -> tuple[float, ...]:
        """Best-child key: OS, then H, then E, then TR + C (missing judge labels count 0)."""
        judged = (self.verdict.task_relevance or 0.0) + (self.verdict.coherence or 0.0)
        return (self.stats.odds_of_success, self.stats.helpfulness, self.stats.efficiency, judged)


@dataclass
class NodeResult:
    """One expanded node: its state, path and labelled children."""

    node_id: str
    depth: int
    prefix: list[str]
    state: GUIState
    ac_sum: float
    children: list[ChildResult]
    chosen: int | None = None  # greedy: the child the search advanced to
    dropped: list[dict[str, str]] = field(default_factory=list)  # children removed (duplicates, invalid)


@dataclass
class TaskResult:
    """Everything one task's search produced."""

    task_id: str
    env_id: str
    seed: int
    status: str  # "ok", "pruned" (no successful calibration episode) or "failed" (env kept failing)
    l0: float | None = None
    depth_cap: int | None = None
    calibration: list[Rollout] = field(default_factory=list)
    nodes: list[NodeResult] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    env_steps: int = 0
    seconds: float = 0.0

    @property
    def n_children(self) -> int:
        return sum(len(n.children) for n in self.nodes)

    def summary(self) -> dict[str, Any]:
        """JSON data about the task (kept with its commit in the dataset folder)."""
        return {
            "env_id": self.env_id,
            "seed": self.seed,
            "status": self.status,
            "L0": self.l0,
            "depth_cap": self.depth_cap,
            "nodes": len(self.nodes),
            "children": self.n_children,
            "calibration": [r.to_dict() for r in self.calibration],
            "env_failures": self.failures,
            "error": self.error,
            "env_steps": self.env_steps,
            "seconds": round(self.seconds, 3),
        }


class TaskSearch:
    """The search over one task (the env of ``session``, env seed ``seed``). Build it, call :meth:`run`, get a
    :class:`TaskResult`. The policy proposes children (``n = N``) and rollout actions (``n = 1``)."""

    def __init__(self, config: CollectConfig, session: EnvSession, policy: Policy, judge: Judge, seed: int):
        self.cfg = config
        self.session = session
        self.adapter = session.adapter
        self.policy = policy
        self.judge = judge
        self.seed = int(seed)
        self.env_id = session.env_id
        self.task_id = task_id_for(self.env_id, self.seed)
        self.l0: float | None = None
        self.depth_cap = 0

    # -- env operations (each is retried as a whole by the session) ------------------------------------------------
    def _rebuild(self, env: Any, prefix: Sequence[str]) -> GUIState | None:
        try:
            state, outcome = self.adapter.rebuild(env, self.seed, list(prefix))
        except (ActionParseError, InvalidActionError) as exc:
            # the replayed page differs from the one the prefix was chosen on (timing, animation): an env fault,
            # retried on a fresh env and recorded, never a crash of the whole collection
            raise EnvFailure(f"replaying the prefix {list(prefix)} of {self.task_id} failed: {exc}") from exc
        self.session.steps += len(prefix)
        return None if prefix and outcome is not None and outcome.done else state

    def _rollout(
        self, env: Any, prefix: Sequence[str], first: str | None, rng: np.random.Generator
    ) -> Rollout:
        """Rebuild ``prefix``, take ``first`` (if given), then follow the policy until the episode ends."""
        actions = list(prefix)
        state = self._rebuild(env, prefix)
        if state is None:
            raise EnvFailure(f"the prefix {actions} ended the episode; cannot roll out from it")
        pending = first
        while True:
            if len(actions) >= self.cfg.max_steps:
                return Rollout(actions, False, "budget")
            if pending is None:
                proposed = self.policy.propose(state, actions, 1, rng)
                if not proposed:
                    return Rollout(actions, False, "no_action")
                pending = proposed[0]
            action, pending = pending, None
            try:
                outcome = self.adapter.step(env, action)
            except (ActionParseError, InvalidActionError) as exc:
                logger.debug("%s: rollout action %r is not executable: %s", self.task_id, action, exc)
                return Rollout(actions, False, "invalid_action")
            self.session.steps += 1
            actions.append(action)
            if outcome.done:
                end = "success" if outcome.success else "truncated" if outcome.truncated else "failure"
                return Rollout(actions, end == "success", end)
            state = outcome.state  # type: ignore[assignment]

    def rollout(self, prefix: Sequence[str], first: str | None, key: tuple[Any, ...]) -> Rollout:
        what = f"rollout {key} of {self.task_id}"
        return self.session.call(what, lambda env: self._rollout(env, prefix, first, self._rng(*key)))

    def _rng(self, *key: Any) -> np.random.Generator:
        return make_rng(self.cfg.seed, self.task_id, *key)

    # -- calibration and expansion ---------------------------------------------------------------------------------
    def calibrate(self) -> list[Rollout]:
        """Run the calibration episodes from the initial state and set L0 and the depth cap."""
        rollouts = [self.rollout([], None, ("calibration", r)) for r in range(self.cfg.n_calibration or 1)]
        self.l0 = calibrate_l0([(r.success, r.length) for r in rollouts])
        if self.l0 is not None:
            cap = math.ceil(self.l0 - 1e-9) + self.cfg.depth_margin
            if self.cfg.max_depth is not None:
                cap = min(cap, self.cfg.max_depth)
            self.depth_cap = max(1, min(cap, self.cfg.max_steps))
        return rollouts

    def _propose_children(
        self, state: GUIState, prefix: list[str], node_id: str
    ) -> tuple[list[str], list[dict]]:
        n = self.cfg.n_children
        rng = self._rng("expand", node_id)
        kept: list[str] = []
        seen: set[str] = set()
        dropped: list[dict[str, str]] = []
        for _attempt in range(1 + self.cfg.fill_attempts):
            for raw in self.policy.propose(state, prefix, n, rng):
                try:
                    action = normalize_action(raw)
                except ActionParseError as exc:
                    dropped.append({"action": str(raw)[:200], "reason": f"unparsable: {exc.problem}"})
                    continue
                key = action if self.cfg.dedupe else f"{len(kept)}:{action}"
                if key in seen:
                    dropped.append({"action": action, "reason": "duplicate"})
                    continue
                seen.add(key)
                kept.append(action)
                if len(kept) == n:
                    return kept, dropped
            if not self.cfg.dedupe:
                break
        return kept, dropped

    def expand(self, prefix: Sequence[str], ac_sum: float) -> NodeResult | None:
        """Expand the node reached by ``prefix``: propose, roll out, label and judge its children.

        Returns None when the node has no executable child (or the prefix ended the episode).
        """
        assert self.l0 is not None, "calibrate() first"
        prefix = list(prefix)
        node_id = node_id_for(prefix)
        depth = len(prefix)
        state = self.session.call(
            f"rebuild {node_id} of {self.task_id}", lambda env: self._rebuild(env, prefix)
        )
        if state is None:
            return None
        actions, dropped = self._propose_children(state, prefix, node_id)
        kept: list[tuple[str, list[Rollout], bool]] = []  # (action, rollouts, the step ended the episode)
        for action in actions:
            rollouts = [
                self.rollout(prefix, action, ("child", node_id, action, r))
                for r in range(self.cfg.rollouts_per_child)
            ]
            if any(r.length <= depth for r in rollouts):  # the child's own step was not executable
                dropped.append({"action": action, "reason": "invalid_action"})
                continue
            first = rollouts[0]
            terminal = first.length == depth + 1 and first.end in ("success", "failure", "truncated")
            kept.append((action, rollouts, terminal))
        if not kept:
            logger.info("%s: node %s has no executable child; stopping there", self.task_id, node_id)
            return None
        outcomes = [[(r.success, r.length) for r in rs] for _, rs, _ in kept]
        stats = label_children(outcomes, depth=depth, l0=self.l0, ac_sum=ac_sum)
        verdicts = self._judge(state, prefix, [a for a, _, _ in kept])
        children = [
            ChildResult(a, rs, s, v, t) for (a, rs, t), s, v in zip(kept, stats, verdicts, strict=True)
        ]
        return NodeResult(node_id, depth, prefix, state, float(ac_sum), children, dropped=dropped)

    def _judge(self, state: GUIState, history: list[str], actions: list[str]) -> list[JudgeVerdict]:
        try:
            verdicts = list(self.judge.judge(state, history, actions))
        except (RuntimeError, ValueError, OSError) as exc:  # recorded per child, never guessed
            logger.warning("%s: the judge failed: %s", self.task_id, exc)
            return [JudgeVerdict(None, None, error=f"{type(exc).__name__}: {exc}"[:500]) for _ in actions]
        if len(verdicts) != len(actions):
            raise RuntimeError(f"the judge returned {len(verdicts)} verdicts for {len(actions)} actions")
        return verdicts

    # -- schedules -------------------------------------------------------------------------------------------------
    def run(self) -> TaskResult:
        """Calibrate, then search with the configured schedule. Env failures past the retries give status failed."""
        start = time.perf_counter()
        result = TaskResult(self.task_id, self.env_id, self.seed, status="ok")
        try:
            result.calibration = self.calibrate()
            result.l0 = self.l0
            if self.l0 is None:
                result.status = "pruned"
            else:
                result.depth_cap = self.depth_cap
                result.nodes = self._greedy() if self.cfg.search == "greedy" else self._uct()
        except TaskFailed as exc:
            result.status = "failed"
            result.error = str(exc)
        result.failures = list(self.session.failures)
        result.env_steps = self.session.steps
        result.seconds = time.perf_counter() - start
        return result

    def _greedy(self) -> list[NodeResult]:
        nodes: list[NodeResult] = []
        prefix: list[str] = []
        ac_sum = 0.0
        while len(prefix) < self.depth_cap:
            node = self.expand(prefix, ac_sum)
            if node is None:
                break
            node.chosen = best_child([c.select_key() for c in node.children])
            nodes.append(node)
            chosen = node.children[node.chosen]
            prefix = [*prefix, chosen.action]
            ac_sum += chosen.stats.helpfulness
            if chosen.terminal:
                break
        return nodes

    def _uct(self) -> list[NodeResult]:
        root = _TreeNode(prefix=[], ac_sum=0.0)
        nodes: list[NodeResult] = []
        for _ in range(self.cfg.uct_iterations):
            leaf = self._select(root)
            if leaf is None:
                break
            node = self.expand(leaf.prefix, leaf.ac_sum)
            leaf.expanded = True
            if node is None:
                leaf.exhausted = True
                continue
            nodes.append(node)
            for child in node.children:
                successes = sum(r.success for r in child.rollouts)
                leaf.children.append(
                    _TreeNode(
                        prefix=[*leaf.prefix, child.action],
                        ac_sum=leaf.ac_sum + child.stats.helpfulness,
                        parent=leaf,
                        visits=len(child.rollouts),
                        value=float(successes),
                        exhausted=child.terminal or len(leaf.prefix) + 1 >= self.depth_cap,
                    )
                )
            visits = sum(c.visits for c in leaf.children)
            value = sum(c.value for c in leaf.children)
            walker: _TreeNode | None = leaf
            while walker is not None:  # value backup
                walker.visits += visits
                walker.value += value
                walker = walker.parent
        return nodes

    def _select(self, root: _TreeNode) -> _TreeNode | None:
        """Descend by UCT to an unexpanded, non-exhausted node; None when the whole tree is exhausted."""
        node = root
        while node.expanded:
            open_children = [c for c in node.children if not c.exhausted]
            if not open_children:
                node.exhausted = True
                if node.parent is None:
                    return None
                node = root  # restart the descent; the exhausted subtree is skipped now
                continue
            log_n = math.log(max(node.visits, 1))
            node = max(open_children, key=lambda c: c.uct(log_n, self.cfg.exploration))
        return node


@dataclass(eq=False)
class _TreeNode:
    prefix: list[str]
    ac_sum: float
    parent: _TreeNode | None = None
    visits: int = 0
    value: float = 0.0
    expanded: bool = False
    exhausted: bool = False
    children: list[_TreeNode] = field(default_factory=list)

    def uct(self, log_parent_visits: float, c: float) -> float:
        if self.visits == 0:
            return math.inf
        return self.value / self.visits + c * math.sqrt(log_parent_visits / self.visits)
