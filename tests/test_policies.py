"""Random and heuristic policies: protocol, registry, sampling behaviour, success rates on the toy env."""

from __future__ import annotations

import numpy as np
import pytest

from similar_rl.envs import make_env
from similar_rl.policies import (
    POLICIES,
    HeuristicPolicy,
    UniformRandomPolicy,
    get_policy_class,
    make_policy,
    register_policy,
)
from similar_rl.types import GUIState, Policy

FAMILIES = ["toy/click-button", "toy/login-form", "toy/open-tab", "toy/checkboxes"]


def success_rate(env_id: str, policy_name: str, episodes: int = 30, **kwargs) -> float:
    env, adapter = make_env(env_id)
    policy = make_policy(policy_name, adapter, **kwargs)
    rng = np.random.default_rng(123)
    wins = 0
    for seed in range(episodes):
        state, _ = adapter.reset(env, seed)
        history: list[str] = []
        while True:
            action = policy.propose(state, history, 1, rng)[0]
            outcome = adapter.step(env, action)
            history.append(action)
            if outcome.done:
                wins += outcome.success
                break
            state = outcome.state
    return wins / episodes


def test_registry_and_protocol():
    _, adapter = make_env("toy/click-button")
    assert get_policy_class("random") is UniformRandomPolicy
    assert POLICIES["hf"] == "similar_rl.policies.hf:HFPolicy"
    for name in ("random", "heuristic"):
        assert isinstance(make_policy(name, adapter), Policy)
    with pytest.raises(ValueError, match="unknown policy 'nope'; choose one of"):
        make_policy("nope", adapter)
    with pytest.raises(ValueError, match="module:ClassName"):
        register_policy("bad", "no_colon")
    register_policy("heuristic-copy", "similar_rl.policies.heuristic:HeuristicPolicy")
    try:
        assert isinstance(make_policy("heuristic-copy", adapter, temperature=0.1), HeuristicPolicy)
    finally:
        del POLICIES["heuristic-copy"]


@pytest.mark.parametrize("name", ["random", "heuristic"])
def test_propose_returns_n_candidates(name):
    env, adapter = make_env("toy/login-form")
    state, _ = adapter.reset(env, seed=2)
    policy = make_policy(name, adapter)
    actions = policy.propose(state, [], 7, np.random.default_rng(0))
    assert len(actions) == 7 and set(actions) <= set(adapter.candidates(state))
    again = policy.propose(state, [], 7, np.random.default_rng(0))
    assert actions == again  # seeded
    with pytest.raises(ValueError, match="n .* must be a positive integer"):
        policy.propose(state, [], 0, np.random.default_rng(0))


def test_empty_candidate_set_proposes_noop():
    _, adapter = make_env("toy/click-button")
    state = GUIState(instruction="Do something")
    for name in ("random", "heuristic"):
        assert make_policy(name, adapter).propose(state, [], 2, np.random.default_rng(0)) == ["noop()"] * 2


def test_heuristic_temperature():
    env, adapter = make_env("toy/click-button")
    state, _ = adapter.reset(env, seed=1)
    target = next(el.ref for el in state.elements if el.text == state.fields["target"])
    greedy = make_policy("heuristic", adapter, temperature=0)
    assert set(greedy.propose(state, [], 20, np.random.default_rng(0))) == {f"click(ref={target})"}
    hot = make_policy("heuristic", adapter, temperature=5.0)
    assert len(set(hot.propose(state, [], 50, np.random.default_rng(0)))) > 2
    probs = make_policy("heuristic", adapter).probabilities(state)
    assert max(probs, key=probs.get) == f"click(ref={target})"
    assert sum(probs.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        HeuristicPolicy(adapter, temperature=-1)


def test_heuristic_orders_steps_and_penalises_repeats():
    env, adapter = make_env("toy/login-form")
    state, _ = adapter.reset(env, seed=0)
    policy = HeuristicPolicy(adapter, temperature=0)
    rng = np.random.default_rng(0)
    history: list[str] = []
    for _ in range(3):
        action = policy.propose(state, history, 1, rng)[0]
        history.append(action)
        outcome = adapter.step(env, action)
        state = outcome.state
    assert history == env.solution and outcome.success
    # the previous action is scored below itself without history
    adapter.reset(env, seed=0)
    state, _ = adapter.reset(env, seed=0)
    first = env.solution[0]
    assert policy.score(state, first, [first]) < policy.score(state, first, []) - 1.5


@pytest.mark.parametrize("env_id", FAMILIES)
def test_heuristic_beats_random(env_id):
    heuristic = success_rate(env_id, "heuristic")
    random = success_rate(env_id, "random")
    assert heuristic > random + 0.2, (heuristic, random)
    assert heuristic >= 0.4
