"""MCTS-P search on the deterministic toy env: hand-computed labels, pruning, dedup, best child, UCT, faults."""

import time

import gymnasium as gym
import numpy as np
import pytest

from similar_rl.collect.config import CollectConfig
from similar_rl.collect.judges import make_judge
from similar_rl.collect.mcts import TaskSearch, make_rng, node_id_for
from similar_rl.envs import get_adapter
from similar_rl.envs.base import EnvFailure, InvalidActionError
from similar_rl.envs.toy import ToyAdapter, ToyEnv
from similar_rl.harness.env_session import EnvSession, EnvTimeout, TaskFailed, deadline
from similar_rl.policies import make_policy


class LoginOracle:
    """A scripted policy for toy/login-form. Rollouts (n=1) take the correct next action; expansions (n>1)
    propose [click Help/other button, correct next action, click submit, correct next action again]."""

    def propose(self, state, history, n, rng):
        by_tag = {el.tag: el for el in state.elements}
        user, pw = by_tag["input_text"], by_tag["input_password"]
        buttons = [el for el in state.elements if el.tag == "button"]
        submit = next(b for b in buttons if f"press {b.text}." in state.instruction)
        other = next(b for b in buttons if b is not submit)
        if user.value != state.fields["username"]:
            good = f'type(ref={user.ref}, text="{state.fields["username"]}")'
        elif pw.value != state.fields["password"]:
            good = f'type(ref={pw.ref}, text="{state.fields["password"]}")'
        else:
            good = f"click(ref={submit.ref})"
        if n == 1:
            return [good]
        return [f"click(ref={other.ref})", good, f"click(ref={submit.ref})", good][:n]


class Noop:
    def propose(self, state, history, n, rng):
        return ["noop()"] * n


def _search(policy, env_id="toy/login-form", seed=0, **kw):
    cfg = CollectConfig(envs=[env_id], **{"n_children": 4, "n_calibration": 2, **kw})
    session = EnvSession(env_id, get_adapter(env_id), max_retries=2)
    return TaskSearch(cfg, session, policy, make_judge("rule"), seed).run()


def _help_seed():
    """The first login-form seed whose distractor is Help (a no-op button): the hand computation needs it."""
    env = ToyEnv("login-form")
    for seed in range(100):
        env.reset(seed=seed)
        roles = {w.role: w for w in env.page.widgets}
        if "help" in roles:
            return seed, roles
    raise AssertionError("no login-form seed with a Help button")


SEED, ROLES = _help_seed()
HELP = f"click(ref={ROLES['help'].ref})"
SUBMIT = f"click(ref={ROLES['submit'].ref})"


def test_greedy_tree_labels_hand_computed():
    r = _search(LoginOracle(), seed=SEED)
    assert r.status == "ok"
    assert r.l0 == 3.0 and r.depth_cap == 4  # both calibration episodes solve it in 3 steps; cap ceil(L0)+1
    assert [len(n.children) for n in r.nodes] == [3, 3, 2]
    user, pw = r.nodes[1].prefix[0], r.nodes[2].prefix[1]
    assert user.startswith(f"type(ref={ROLES['username'].ref},") and pw.startswith(
        f"type(ref={ROLES['password'].ref},"
    )
    third = 1 / 3
    # depth 0 (AC 0, H = +-1/(3-0)): Help then 3 oracle steps (len 4), type user (len 3), submit empty form (fails)
    #   R_prev = mean(4 - 0, 3 - 0) = 3.5; E = (3.5 - 3)/3, (3.5 - 2)/3, min(-1/3, 1/6, 1/2)
    # depth 1 (AC 1/3, H = +-(2/3)/(3-1)): R_prev = mean(4 - 1, 3 - 1) = 2.5; E = (2.5 - 2)/3, (2.5 - 1)/3, -1/3
    # depth 2 (AC 2/3, H = +-(1/3)/1): Help (len 4), submit (len 3); R_prev = mean(2, 1); E = (1.5 - 1)/3, 1.5/3
    want = [
        [(HELP, 1.0, 1 / 6, third), (user, 1.0, 0.5, third), (SUBMIT, 0.0, -third, -third)],
        [(HELP, 1.0, 1 / 6, third), (pw, 1.0, 0.5, third), (SUBMIT, 0.0, -third, -third)],
        [(HELP, 1.0, 1 / 6, third), (SUBMIT, 1.0, 0.5, third)],
    ]
    for node, rows in zip(r.nodes, want, strict=True):
        got = [
            (c.action, c.stats.odds_of_success, c.stats.efficiency, c.stats.helpfulness)
            for c in node.children
        ]
        for g, w in zip(got, rows, strict=True):
            assert g[0] == w[0]
            assert g[1:] == pytest.approx(w[1:])
    assert [n.ac_sum for n in r.nodes] == pytest.approx([0, third, 2 * third])
    # the best child is the second slot every time (the sort result is used, not child 0)
    assert [n.chosen for n in r.nodes] == [1, 1, 1]
    assert [n.prefix for n in r.nodes] == [[], [user], [user, pw]]
    assert r.nodes[-1].children[1].terminal  # the search stops when the chosen step ends the episode
    # rollouts keep whole action sequences (from the initial state) and success
    help_child = r.nodes[0].children[0]
    assert help_child.rollouts[0].actions == [HELP, user, pw, SUBMIT] and help_child.rollouts[0].success
    assert [x.end for x in r.nodes[0].children[2].rollouts] == ["failure"]
    # judge labels on every child
    assert all(c.verdict.task_relevance is not None for n in r.nodes for c in n.children)


def test_identical_siblings_are_deduplicated():
    r = _search(LoginOracle(), seed=SEED)
    # depth 2: the policy proposes Help, submit, submit, submit -> two children, two duplicates dropped
    assert [c.action for c in r.nodes[2].children] == [HELP, SUBMIT]
    assert sum(d["reason"] == "duplicate" for d in r.nodes[2].dropped) >= 2
    for node in r.nodes:
        actions = [c.action for c in node.children]
        assert len(actions) == len(set(actions))


def test_task_without_successful_calibration_is_pruned():
    r = _search(Noop(), max_steps=4)
    assert r.status == "pruned" and r.l0 is None and r.nodes == []
    assert [c.end for c in r.calibration] == ["budget", "budget"]
    assert all(c.length == 4 for c in r.calibration)  # rollouts are cut at the step budget


def test_depth_cap():
    r = _search(LoginOracle(), seed=SEED, max_depth=2)
    assert r.depth_cap == 2 and len(r.nodes) == 2


def test_uct_tracks_visits_and_ac_per_path():
    r = _search(LoginOracle(), seed=SEED, search="uct", uct_iterations=5, exploration=1.0)
    assert r.status == "ok" and 2 <= len(r.nodes) <= 5
    assert r.nodes[0].prefix == []
    h_of = {(*n.prefix, c.action): c.stats.helpfulness for n in r.nodes for c in n.children}
    for node in r.nodes:  # AC of a node = sum of H along its own path
        expected = sum(h_of[tuple(node.prefix[: k + 1])] for k in range(len(node.prefix)))
        assert node.ac_sum == pytest.approx(expected)
    assert len({tuple(n.prefix) for n in r.nodes}) == len(r.nodes)  # each node expanded once
    # the terminal failure (submit at the root) is never expanded
    assert all(not (n.prefix and n.prefix[0] == SUBMIT) for n in r.nodes)


def test_same_seed_same_tree_and_rng_is_keyed():
    a, b = (
        _search(
            make_policy("heuristic", get_adapter("toy/checkboxes"), temperature=1.0), "toy/checkboxes", seed=3
        )
        for _ in range(2)
    )
    assert [(n.node_id, [c.action for c in n.children]) for n in a.nodes] == [
        (n.node_id, [c.action for c in n.children]) for n in b.nodes
    ]
    x = make_rng(0, "t", "child", node_id_for([]), 0).random()
    assert (
        x
        == make_rng(0, "t", "child", node_id_for([]), 0).random()
        != make_rng(1, "t", "child", "d0-root", 0).random()
    )


# -- fault injection ------------------------------------------------------------------------------------------------
class _Faulty(gym.Wrapper):
    plan: dict[int, str] = {}  # global step number -> "fail" | "hang"
    count = 0

    def step(self, action):
        type(self).count += 1
        mode = self.plan.pop(type(self).count, None)
        if mode == "fail":
            raise EnvFailure(f"injected browser crash at step {type(self).count}")
        if mode == "hang":
            time.sleep(3)
        return self.env.step(action)


class FaultyAdapter(ToyAdapter):
    def make_env(self, env_id, **kwargs):
        return _Faulty(ToyEnv(task=env_id.split("/", 1)[1], **kwargs))


def test_env_failure_and_hang_are_retried_and_recorded():
    clean = _search(LoginOracle(), seed=SEED)
    _Faulty.count = 0
    _Faulty.plan = {7: "fail", 20: "hang"}
    cfg = CollectConfig(envs=["toy/login-form"], n_children=4, n_calibration=2, step_timeout_s=0.5)
    session = EnvSession("toy/login-form", FaultyAdapter(), max_retries=2, timeout_s=0.5)
    r = TaskSearch(cfg, session, LoginOracle(), make_judge("rule"), SEED).run()
    assert r.status == "ok"
    errors = [f["error"] for f in r.failures]
    assert len(errors) == 2
    assert "injected browser crash at step 7" in errors[0] and "EnvTimeout" in errors[1]

    # the retried operations produced exactly the clean tree
    def view(res):
        return [
            [(c.action, c.labels, [x.actions for x in c.rollouts]) for c in n.children] for n in res.nodes
        ]

    assert view(r) == view(clean)


class _HangsOnStep(ToyAdapter):
    """Every env it makes hangs on its first step (a browser that starts, then freezes)."""

    def make_env(self, env_id, **kwargs):
        env = ToyEnv(task=env_id.split("/", 1)[1], **kwargs)

        class Hanging(gym.Wrapper):
            def step(self, action):
                time.sleep(30)
                return self.env.step(action)

        return Hanging(env)


@pytest.mark.timeout(60)
def test_a_hang_on_a_freshly_made_env_still_hits_the_deadline():
    # each attempt makes its env inside the operation (the first lazily, the retry after closing the hung one)
    session = EnvSession("toy/login-form", _HangsOnStep(), max_retries=1, timeout_s=0.5)
    with pytest.raises(TaskFailed, match="failed 2 times"):
        session.call("step", lambda env: (env.reset(seed=0), env.step("noop()")))
    assert [f["attempt"] for f in session.failures] == [0, 1]
    assert all("EnvTimeout" in f["error"] for f in session.failures)


def test_nested_deadlines_keep_the_outer_one():
    with pytest.raises(EnvTimeout, match="outer"), deadline(0.3, "outer"):
        with deadline(5.0, "inner"):
            pass  # exits at once; the outer 0.3 s must still be armed
        time.sleep(5)


def test_env_that_keeps_failing_fails_the_task():
    _Faulty.count = 0
    _Faulty.plan = {i: "fail" for i in range(1, 200)}
    cfg = CollectConfig(envs=["toy/login-form"], n_children=2)
    session = EnvSession("toy/login-form", FaultyAdapter(), max_retries=1)
    r = TaskSearch(cfg, session, LoginOracle(), make_judge("rule"), 0).run()
    _Faulty.plan = {}
    assert r.status == "failed" and "failed 2 times" in r.error and len(r.failures) == 2


def test_rng_is_seedsequence_generator():
    assert isinstance(make_rng(0, "x"), np.random.Generator)


class _UnreplayablePrefix(ToyAdapter):
    """Replaying any non-empty prefix finds another page (a non-deterministic page): its refs are gone."""

    def rebuild(self, env, seed, prefix):
        if prefix:
            raise InvalidActionError("ref 271 is not an element of the current page")
        return super().rebuild(env, seed, prefix)


def test_a_prefix_that_cannot_be_replayed_fails_the_task_not_the_collection():
    cfg = CollectConfig(envs=["toy/login-form"], n_children=2, n_calibration=1, max_retries=1)
    session = EnvSession("toy/login-form", _UnreplayablePrefix(), max_retries=1)
    r = TaskSearch(cfg, session, LoginOracle(), make_judge("rule"), SEED).run()  # returns, does not raise
    assert r.status == "failed" and "failed 2 times" in r.error
    assert [f["attempt"] for f in r.failures] == [0, 1]
    assert all("replaying the prefix" in f["error"] and "ref 271" in f["error"] for f in r.failures)
