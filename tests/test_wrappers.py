"""Gymnasium wrappers on the toy env (and MiniWoB++) with the real tiny reward model."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from trl_helpers import build_reward_model

from similar_rl import SCORE_KEYS
from similar_rl.dimensions import DIMENSIONS
from similar_rl.envs import EnvFailure, make_env
from similar_rl.envs.toy import ToyEnv
from similar_rl.scoring import Scorer
from similar_rl.wrappers import SimilarRewardWrapper, SimilarVectorRewardWrapper

LOGIN = ['type(ref=2, text="x")', "click(ref=6)", "noop()"]


@pytest.fixture(scope="module")
def scorer():
    return Scorer(build_reward_model())


def wrapped(scorer, task="login-form", **kwargs):
    env, adapter = make_env(f"toy/{task}")
    return SimilarRewardWrapper(env, scorer, adapter, **kwargs)


@pytest.mark.parametrize("mode", ["add", "potential"])
def test_check_env(scorer, mode):
    check_env(wrapped(scorer, reward_mode=mode), skip_render_check=True)


def test_info_keys_and_add_mode(scorer):
    env = wrapped(scorer, coef=0.5)
    _, info = env.reset(seed=1)
    state = env.state
    _, reward, *_, info = env.step('type(ref=2,  text="bob")')
    expected = scorer.score_one(state.step_input('type(ref=2, text="bob")'))
    assert set(info["similar"]) == set(SCORE_KEYS)
    assert info["similar"] == pytest.approx(expected)
    assert info["similar_env_reward"] == 0.0
    assert reward == pytest.approx(0.5 * expected["total"])
    assert env.history == ['type(ref=2, text="bob")']  # canonical spelling
    state2 = env.state
    _, reward, *_, info = env.step("click(ref=5)")
    expected = scorer.score_one(state2.step_input("click(ref=5)", ['type(ref=2, text="bob")']))
    assert info["similar"] == pytest.approx(expected)
    assert env.spec is None or env.spec.kwargs.get("coef") == 0.5


def test_replace_and_weighted_modes(scorer):
    plain = wrapped(scorer, reward_mode="replace", coef=2.0)
    weighted = wrapped(scorer, reward_mode="add", dimensions_weights={"coherence": 3.0})
    for env in (plain, weighted):
        env.reset(seed=2)
    *_, r_plain, _, _, info = plain.step("noop()")
    *_, r_weighted, _, _, info_w = weighted.step("noop()")
    assert r_plain == pytest.approx(2.0 * info["similar"]["total"])
    assert r_weighted == pytest.approx(info_w["similar_env_reward"] + 3.0 * info_w["similar"]["coherence"])


def test_potential_mode_telescopes(scorer):
    gamma = 0.9
    env = wrapped(scorer, task="click-button", reward_mode="potential", gamma=gamma)
    env.reset(seed=0)
    phi0 = scorer.score_one(env.state.step_input("noop()"))["odds_of_success"]
    _, r1, term, trunc, info = env.step("noop()")
    phi1 = scorer.score_one(env.state.step_input("noop()", ["noop()"]))["odds_of_success"]
    assert info["similar_potential"] == pytest.approx(phi1)
    assert r1 == pytest.approx(gamma * phi1 - phi0)
    solution = env.unwrapped.solution[-1]
    _, r2, term, _, info = env.step(solution)
    assert term and info["similar_env_reward"] == 1.0
    assert r2 == pytest.approx(1.0 - phi1)  # Phi(terminal) = 0
    with pytest.raises(RuntimeError, match="reset"):
        env.step("noop()")


class InfoWriter(gym.Wrapper):
    """Writes a given info key (the generic env with an injected step)."""

    def __init__(self, env, key):
        super().__init__(env)
        self.key = key

    def step(self, action):
        obs, r, te, tr, info = self.env.step(action)
        info[self.key] = "mine"
        return obs, r, te, tr, info


class Flaky(gym.Wrapper):
    def step(self, action):
        if action == "click(ref=99)":
            raise EnvFailure("browser lost")
        return self.env.step(action)


def test_refuses_to_overwrite_info(scorer):
    env, adapter = make_env("toy/login-form")
    wrapper = SimilarRewardWrapper(InfoWriter(env, "similar"), scorer, adapter)
    wrapper.reset(seed=0)
    with pytest.raises(ValueError, match=r"already writes info\['similar'\].*info_key="):
        wrapper.step("noop()")
    other = SimilarRewardWrapper(InfoWriter(env, "similar"), scorer, adapter, info_key="similar_rm")
    other.reset(seed=0)
    assert other.step("noop()")[-1]["similar"] == "mine"


def test_env_failure_leaves_history(scorer):
    env, adapter = make_env("toy/login-form")
    wrapper = SimilarRewardWrapper(Flaky(env), scorer, adapter)
    wrapper.reset(seed=0)
    wrapper.step("noop()")
    with pytest.raises(EnvFailure):
        wrapper.step("click(ref=99)")
    assert wrapper.history == ["noop()"]
    wrapper.step("noop()")
    assert wrapper.history == ["noop()", "noop()"]


def test_bad_arguments(scorer):
    with pytest.raises(ValueError, match="reward_mode"):
        wrapped(scorer, reward_mode="multiply")
    with pytest.raises(ValueError, match="adapter"):
        SimilarRewardWrapper(gym.make("CartPole-v1"), scorer)
    env = SimilarRewardWrapper(ToyEnv("login-form"), scorer)  # adapter found from the env itself
    assert env.adapter.name == "toy"


@pytest.mark.parametrize("mode", ["add", "potential"])
def test_vector_equals_single(scorer, mode):
    tasks, seeds = ["click-button", "login-form"], [4, 5]
    actions = [["noop()", "noop()"], ["SOLVE", LOGIN[0]], ["noop()", LOGIN[1]], ["noop()", "noop()"]]
    venv = gym.vector.SyncVectorEnv([lambda t=t: ToyEnv(t) for t in tasks])
    vec = SimilarVectorRewardWrapper(venv, scorer, reward_mode=mode, coef=0.7)
    singles = [wrapped(scorer, task=t, reward_mode=mode, coef=0.7) for t in tasks]
    vec.reset(seed=seeds)
    for env, seed in zip(singles, seeds, strict=True):
        env.reset(seed=seed)
    solve = venv.envs[0].solution[-1]
    calls_before = scorer.forward_calls + scorer.cache_hits
    needs_reset = [False, False]
    for step_actions in actions:
        step_actions = [solve if a == "SOLVE" else a for a in step_actions]
        _, rewards, term, trunc, info = vec.step(tuple(step_actions))
        for i, env in enumerate(singles):
            if needs_reset[i]:  # NEXT_STEP autoreset: this step only reset sub-env i
                assert not info["_similar"][i]
                env.reset(seed=None)
                needs_reset[i] = False
                continue
            _, r, te, tr, single_info = env.step(step_actions[i])
            assert info["_similar"][i]
            assert rewards[i] == pytest.approx(r, abs=1e-5)
            for k in SCORE_KEYS:
                assert info["similar"][k][i] == pytest.approx(single_info["similar"][k], abs=1e-5)
            needs_reset[i] = te or tr
    assert vec.histories() == [env.history for env in singles]
    assert scorer.forward_calls + scorer.cache_hits > calls_before


def test_vector_scores_all_sub_envs_in_one_call(scorer):
    venv = gym.vector.SyncVectorEnv([lambda: ToyEnv("login-form")] * 3)
    vec = SimilarVectorRewardWrapper(venv, Scorer(scorer.model), reward_mode="potential")
    vec.reset(seed=10)
    assert vec.scorer.forward_calls == 1
    vec.step(("noop()", "click(ref=1)", 'type(ref=2, text="a")'))
    assert vec.scorer.forward_calls == 2


@pytest.mark.browser
def test_miniwob_wrapper(scorer):
    env, adapter = make_env("miniwob/click-test-2-v1")  # the set-up installs miniwob and the browser
    wrapper = SimilarRewardWrapper(env, scorer, adapter, reward_mode="add")
    try:
        obs, _ = wrapper.reset(seed=0)
        for _ in range(3):
            action = adapter.candidates(wrapper.state)[0]
            obs, reward, term, trunc, info = wrapper.step(adapter.to_env_action(env, action))
            assert set(info["similar"]) == set(SCORE_KEYS)
            assert reward == pytest.approx(info["similar_env_reward"] + info["similar"]["total"])
            assert wrapper.history[-1] == action
            if term or trunc:
                break
    finally:
        wrapper.close()


@pytest.mark.browser
def test_a_plain_gymnasium_miniwob_env_takes_its_native_actions(scorer):
    from miniwob.action import ActionTypes

    env = SimilarRewardWrapper(gym.make("miniwob/click-button-sequence-v1"), scorer)  # miniwob's own space
    try:
        env.reset(seed=0)
        raw = env.unwrapped
        button = next(el for el in env.state.elements if el.tag == "button")
        steps = [
            (raw.create_action(ActionTypes.CLICK_ELEMENT, ref=button.ref), f"click(ref={button.ref})"),
            (raw.create_action(ActionTypes.SCROLL_DOWN_COORDS, coords=np.array([80, 100])), "scroll_down_xy"),
            (raw.create_action(ActionTypes.PRESS_KEY, key=0), "press(key="),
            (raw.create_action(ActionTypes.NONE), "noop()"),
        ]
        for action, expected in steps:
            _, reward, term, trunc, info = env.step(action)
            assert env.history[-1].startswith(expected) and set(info["similar"]) == set(SCORE_KEYS)
            assert math.isfinite(reward)
            if term or trunc:
                break
    finally:
        env.close()


def test_a_wrapped_step_observes_the_page_once(scorer):
    from similar_rl.envs.toy import ToyAdapter

    class Counting(ToyAdapter):
        calls = 0

        def observe(self, obs, info=None):
            type(self).calls += 1
            return super().observe(obs, info)

    adapter = Counting()
    env = SimilarRewardWrapper(adapter.make_env("toy/login-form"), scorer, adapter)
    env.reset(seed=0)
    before = Counting.calls
    outcome = adapter.step(env, "noop()")  # the wrapper reads the new state; the adapter reuses it
    assert Counting.calls == before + 1 and outcome.state is env.state


def _episode(scorer, mode, seed=0, **kw):
    env = SimilarRewardWrapper(ToyEnv(task="login-form"), scorer, reward_mode=mode, **kw)
    env.reset(seed=seed)
    phi0 = env._phi
    rows = []
    for action in ["noop()", 'type(ref=2, text="x")', "noop()", "click(ref=4)", "noop()", "noop()"]:
        _, reward, term, trunc, info = env.step(action)
        rows.append((reward, info))
        if term or trunc:
            break
    return phi0, rows


def test_potential_shaping_sums_to_the_discounted_potential_difference(scorer):
    gamma = 0.9
    phi0, rows = _episode(scorer, "potential", gamma=gamma, coef=1.0)
    shaping = [reward - info["similar_env_reward"] for reward, info in rows]
    discounted = sum(gamma**t * f for t, f in enumerate(shaping))
    last_phi = rows[-1][1]["similar_potential"]  # 0 once the episode ended
    assert discounted == pytest.approx(gamma ** len(rows) * last_phi - phi0, abs=1e-6)


def test_penalties_are_never_positive_and_vector_reward_matches_info(scorer):
    _, plain = _episode(scorer, "potential", coef=1.0)
    _, guarded = _episode(scorer, "potential_penalty", coef=1.0, penalty=0.5)
    assert len(plain) == len(guarded)
    for (r_plain, _), (r_guarded, info) in zip(plain, guarded, strict=True):
        cost = 0.5 * (
            max(0.0, 1 - info["similar"]["task_relevance"]) + max(0.0, 1 - info["similar"]["coherence"])
        )
        assert r_guarded - r_plain == pytest.approx(-cost, abs=1e-6) and r_guarded - r_plain <= 0
        assert info["vector_reward"].dtype == np.float32 and info["vector_reward"].shape == (5,)
        assert info["vector_reward"].tolist() == pytest.approx(
            [info["similar"][k] for k in DIMENSIONS], abs=1e-6
        )
    with pytest.raises(ValueError, match="penalty must be"):
        SimilarRewardWrapper(ToyEnv(task="login-form"), scorer, reward_mode="potential_penalty", penalty=-1)
    # reward_weights scalarise vector_reward as the wrapper does when dimension weights are given
    env = SimilarRewardWrapper(
        ToyEnv(task="login-form"), scorer, dimensions_weights={"helpfulness": 2.0}, coef=0.5
    )
    env.reset(seed=0)
    _, reward, *_, info = env.step("noop()")
    assert info["reward_weights"].tolist() == [2.0, 0.0, 0.0, 0.0, 0.0]
    assert reward == pytest.approx(
        info["similar_env_reward"] + 0.5 * float(info["vector_reward"] @ info["reward_weights"])
    )


def test_the_vector_wrapper_batches_vector_rewards(scorer):
    envs = gym.vector.SyncVectorEnv([lambda: ToyEnv(task="login-form")] * 2)
    vec = SimilarVectorRewardWrapper(envs, scorer, reward_mode="potential_penalty")
    vec.reset(seed=1)
    _, _, _, _, info = vec.step(("noop()", "click(ref=1)"))
    assert info["vector_reward"].shape == (2, 5) and info["reward_weights"].shape == (2, 5)
    for i in range(2):
        assert info["vector_reward"][i].tolist() == pytest.approx(
            [info["similar"][k][i] for k in DIMENSIONS], abs=1e-6
        )
