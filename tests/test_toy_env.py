"""The toy GUI env and its adapter: Gymnasium conformance, determinism, errors, solvability."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from similar_rl.envs import ActionParseError, InvalidActionError, get_adapter, make_env
from similar_rl.envs.render import render_elements
from similar_rl.envs.toy import ToyAdapter, ToyEnv
from similar_rl.envs.toy_tasks import FAMILIES
from similar_rl.types import Element, GUIState

FAMILY_IDS = [f"toy/{name}" for name in FAMILIES]


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_check_env_passes(name, render_mode):
    env = gym.make(f"similar_rl/toy-{name}-v0", render_mode=render_mode).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)


def test_make_env_returns_env_and_adapter():
    env, adapter = make_env("toy/login-form", max_steps=4)
    assert isinstance(env, ToyEnv) and isinstance(adapter, ToyAdapter)
    assert env.max_steps == 4
    assert isinstance(get_adapter("toy/open-tab"), ToyAdapter)


def test_unknown_family_and_bad_kwargs_are_rejected():
    with pytest.raises(ValueError, match="unknown toy task 'nope'"):
        make_env("toy/nope")
    with pytest.raises(ValueError, match="max_steps"):
        make_env("toy/click-button", max_steps=0)


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_observation_and_state(env_id):
    env, adapter = make_env(env_id)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    state = adapter.observe(obs)
    assert isinstance(state, GUIState)
    assert state.screenshot.shape == (210, 160, 3) and state.screenshot.dtype == np.uint8
    assert state.observation_text == render_elements(state.elements)
    assert state.observation_text.splitlines()[0].startswith("[1] ")
    assert state.fields and all(v in state.instruction for v in state.fields.values())
    refs = [el.ref for el in state.elements]
    assert len(refs) == len(set(refs))
    # the page area (below the banner) is not blank
    assert (state.screenshot[50:] != 255).any()
    assert state.step_input("noop()").prompt_key == state.step_input("click(ref=1)").prompt_key


@settings(max_examples=60, deadline=None)
@given(
    action=st.one_of(
        st.text(max_size=40), st.sampled_from(["click(ref=-1)", 'type(ref=2, text="\\u00e9\\n")'])
    )
)
def test_step_never_raises_on_any_string(action):
    env, _ = make_env("toy/login-form")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert env.observation_space.contains(obs)
    assert reward in (-1.0, 0.0, 1.0)
    if "action_error" in info:
        assert reward == 0.0 and not terminated


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_canonical_solution_succeeds(env_id):
    env, adapter = make_env(env_id)
    for seed in range(10):
        state, _ = adapter.reset(env, seed=seed)
        solution = env.solution
        assert solution
        for i, action in enumerate(solution):
            assert action in adapter.candidates(state)
            outcome = adapter.step(env, action)
            assert "action_error" not in outcome.info
            if i < len(solution) - 1:
                assert not outcome.done and outcome.reward == 0
                state = outcome.state
        assert (outcome.reward, outcome.terminated, outcome.success) == (1.0, True, True)


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_replay_is_deterministic(env_id):
    env, adapter = make_env(env_id)
    other, _ = make_env(env_id)
    for seed in (0, 7):
        adapter.reset(env, seed)
        prefix = env.solution[:-1] or ["noop()"]
        a, _ = adapter.rebuild(env, seed, prefix)
        adapter.reset(other, seed + 1000)  # disturb the second env's RNG first
        b, _ = adapter.rebuild(other, seed, prefix)
        assert a.observation_text == b.observation_text
        assert a.instruction == b.instruction
        np.testing.assert_array_equal(a.screenshot, b.screenshot)


def test_seeds_vary_the_task():
    env, adapter = make_env("toy/click-button")
    texts = {adapter.reset(env, seed)[0].observation_text for seed in range(10)}
    assert len(texts) > 5


def test_wrong_terminal_actions_give_minus_one():
    env, adapter = make_env("toy/click-button")
    state, _ = adapter.reset(env, seed=0)
    target = state.fields["target"]
    wrong = next(el for el in state.elements if el.tag == "button" and el.text != target)
    outcome = adapter.step(env, f"click(ref={wrong.ref})")
    assert (outcome.reward, outcome.terminated, outcome.success) == (-1.0, True, False)

    env, adapter = make_env("toy/login-form")
    adapter.reset(env, seed=0)
    submit = env.solution[-1]
    outcome = adapter.step(env, submit)  # fields still empty
    assert (outcome.reward, outcome.terminated) == (-1.0, True)


def test_malformed_and_unknown_ref_actions_are_recorded_not_raised():
    env, adapter = make_env("toy/login-form", max_steps=3)
    obs0, _ = env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step("click(3")
    assert "expected NAME(ARGS)" in info["action_error"] and "Valid actions" in info["action_error"]
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs["dom"] == obs0["dom"]
    obs, reward, terminated, truncated, info = env.step("click(ref=99)")
    assert "no element with ref 99" in info["action_error"]
    obs, reward, terminated, truncated, info = env.step('type(ref=1, text="x")')  # a label
    assert "not a text field" in info["action_error"]
    assert truncated and not terminated and reward == 0.0
    _, _, _, _, info = env.step("noop()")
    assert "episode is over" in info["action_error"]


def test_adapter_raises_clear_errors():
    env, adapter = make_env("toy/login-form")
    adapter.reset(env, seed=1)
    with pytest.raises(ActionParseError, match="Valid actions"):
        adapter.to_env_action(env, "click(3)")
    with pytest.raises(
        InvalidActionError, match=r"no element with ref 42 on the page; visible refs are \[1, 2"
    ):
        adapter.to_env_action(env, "click(ref=42)")
    with pytest.raises(InvalidActionError, match="not a text field"):
        adapter.step(env, 'type(ref=5, text="a")')
    assert adapter.to_env_action(env, " click( ref = 2 ) ") == "click(ref=2)"
    assert adapter.to_action_string('type(ref=2,text="a")') == 'type(ref=2, text="a")'


def test_hidden_tab_refs_are_unknown_until_the_tab_opens():
    env, adapter = make_env("toy/open-tab")
    state, _ = adapter.reset(env, seed=2)
    open_tab, click_target = env.solution
    with pytest.raises(InvalidActionError):
        adapter.to_env_action(env, click_target)
    state = adapter.step(env, open_tab).state
    assert adapter.to_env_action(env, click_target) == click_target
    assert state.element(int(click_target[10:-1])).text == state.fields["target"]


def test_type_replaces_value_and_focuses():
    env, adapter = make_env("toy/login-form")
    state, _ = adapter.reset(env, seed=0)
    field = next(el for el in state.elements if el.typeable)
    adapter.step(env, f'type(ref={field.ref}, text="abc")')
    state = adapter.step(env, f'type(ref={field.ref}, text="{"z" * 100}")').state
    el = state.element(field.ref)
    assert el.value == "z" * 64 and el.focused
    assert f'(value="{"z" * 64}", focused)' in state.observation_text


def test_click_xy_hits_the_element_under_the_point():
    env, adapter = make_env("toy/click-button")
    state, _ = adapter.reset(env, seed=4)
    target = next(el for el in state.elements if el.text == state.fields["target"])
    x, y = target.center
    outcome = adapter.step(env, f"click_xy(x={x}, y={y})")
    assert outcome.success
    adapter.reset(env, seed=4)
    outcome = adapter.step(env, "click_xy(x=159, y=209)")  # blank corner
    assert not outcome.done and outcome.reward == 0


def test_checkbox_toggle_and_prechecked_boxes():
    env, adapter = make_env("toy/checkboxes")
    seeds = [s for s in range(40) if any(el.value for el in adapter.reset(env, s)[0].elements)]
    assert seeds, "some episodes start with a ticked box"
    state, _ = adapter.reset(env, seeds[0])
    ticked = next(el for el in state.elements if el.value)
    assert f"click(ref={ticked.ref})" in env.solution
    state = adapter.step(env, f"click(ref={ticked.ref})").state
    assert state.element(ticked.ref).value == ""


def test_candidates_type_field_values_into_fields():
    env, adapter = make_env("toy/login-form")
    state, _ = adapter.reset(env, seed=5)
    cands = adapter.candidates(state)
    typeable = [el for el in state.elements if el.typeable]
    assert len([c for c in cands if c.startswith("type(")]) == len(typeable) * len(state.fields)
    assert all(adapter.to_env_action(env, c) == c for c in cands)


def test_render_elements_quotes_and_truncates():
    text = render_elements([Element(ref=7, tag="div", text='say "hi"\n' + "x" * 200)])
    assert text.startswith('[7] div "say \\"hi\\" xxx')
    assert text.endswith('..."') and "\n" not in text
