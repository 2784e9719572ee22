"""MiniWoB++ adapter: pure conversion tests, and real MiniWoB++ tasks in headless Chromium (marker ``browser``).

Browser tests start one env per task family and close it before the next (each env is ~1 GB of Chromium).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from similar_rl.envs import make_env
from similar_rl.envs.actions import ActionParseError, parse_action
from similar_rl.envs.base import EnvFailure, InvalidActionError
from similar_rl.envs.miniwob import MiniWoBAdapter, grammar_key, miniwob_key, task_name
from similar_rl.types import GUIState

HAS_BROWSER = bool(shutil.which("chromium") or shutil.which("/usr/bin/chromium")) and bool(
    shutil.which("chromedriver") or shutil.which("/usr/bin/chromedriver")
)
browser = pytest.mark.browser
needs_browser = pytest.mark.skipif(not HAS_BROWSER, reason="chromium/chromedriver not installed")


def _el(ref, parent, tag, text="", value="", left=2.0, top=52.0, width=40.0, height=12.0, leaf=1, focused=0):
    return {
        "ref": ref,
        "parent": parent,
        "tag": tag,
        "text": text,
        "value": value,
        "id": "",
        "classes": "",
        "left": np.array([left], np.float32),
        "top": np.array([top], np.float32),
        "width": np.array([width], np.float32),
        "height": np.array([height], np.float32),
        "flags": np.array([focused, 0, 0, leaf], np.int8),
    }


# ----------------------------------------------------------------------------- pure (no browser)


def test_elements_fold_text_skip_wrappers_and_label_checkboxes():
    dom = [
        _el(1, 0, "body", width=780, height=210, leaf=0, focused=1),
        _el(2, 1, "div", leaf=0),  # wrapper without text: skipped
        _el(3, 2, "label", leaf=0),
        _el(4, 3, "input_checkbox", value="True"),
        _el(-1, 3, "t", text="Alpha"),  # text node folded into the label, which gives it to the checkbox
        _el(5, 2, "input_text", value="bob", focused=1),
        _el(6, 2, "button", text="Submit"),
        _el(7, 1, "div", text="hidden", left=-1, top=209, width=1, height=1),  # off-screen 1x1: skipped
        _el(8, 2, "select", leaf=0),
    ]
    adapter = MiniWoBAdapter()
    state = adapter.observe(
        {
            "utterance": "Select Alpha",
            "dom_elements": dom,
            "fields": (("target", "Alpha"),),
            "screenshot": None,
        },
        {"select_options": {8: (("A", "B"), 1)}},
    )
    assert [el.ref for el in state.elements] == [4, 5, 6, 8]
    assert state.observation_text.splitlines() == [
        '[4] input_checkbox "Alpha" (value="checked")',
        '[5] input_text "" (value="bob", focused)',
        '[6] button "Submit"',
        '[8] select "options: A | B" (value="B")',
    ]
    assert state.fields == {"target": "Alpha"}
    assert state.element(5).typeable and state.element(8).typeable and not state.element(6).typeable
    cands = adapter.candidates(state)
    assert cands[:4] == ["click(ref=4)", "click(ref=5)", "click(ref=6)", "click(ref=8)"]
    assert 'type(ref=5, text="Alpha")' in cands and 'type(ref=8, text="Alpha")' in cands
    assert cands[-1] == 'press(key="Enter")'  # an input is focused
    for c in cands:
        parse_action(c)


def test_candidates_type_values_read_off_the_page():
    long_text = "x" * 70
    dom = [
        _el(1, 0, "body"),
        _el(4, 1, "div", text="12 x 3 ="),
        _el(5, 1, "textarea", value=long_text, focused=1),
        _el(6, 1, "input_text"),
        _el(7, 1, "input_time"),
        _el(8, 1, "button", text="Submit"),
    ]
    state = MiniWoBAdapter().observe({"utterance": "Solve it", "dom_elements": dom, "fields": (("w", "Go"),)})
    cands = MiniWoBAdapter().candidates(state)
    assert (
        'type(ref=6, text="36")' in cands and 'type(ref=7, text="go")' in cands
    )  # computed; input_time types
    assert not any("Submit" in c for c in cands if c.startswith("type"))  # button labels are not values
    assert 'press(key="Control+c")' in cands  # the textarea holds more than one type action can carry
    plain = MiniWoBAdapter(page_values=False).candidates(state)
    assert (
        not any(c.startswith("type") and "36" in c for c in plain) and 'press(key="Control+c")' not in plain
    )


def test_observation_text_is_capped():
    dom = [_el(i, 0, "div", text=f"item {i} " + "x" * 200, top=10 + i) for i in range(1, 100)]
    state = MiniWoBAdapter(max_elements=20, max_text_chars=50).observe(
        {"utterance": "u", "dom_elements": dom}
    )
    lines = state.observation_text.splitlines()
    assert len(lines) == 21 and lines[-1] == "... (79 more elements not shown)"
    assert all(len(line) < 80 for line in lines)


def test_key_mapping_round_trips():
    for key in ["Enter", "Tab", "a", "1", "Control+a", "ArrowDown"]:
        assert grammar_key(miniwob_key(key)) == key
    assert miniwob_key("Enter") == "<Enter>" and miniwob_key("ctrl+c") == "C-c"
    with pytest.raises(InvalidActionError, match="modifier"):
        miniwob_key("Hyper+a")


def test_to_action_string_and_task_name():
    adapter = MiniWoBAdapter()
    assert adapter.to_action_string({"action_type": 0}) == "noop()"
    assert adapter.to_action_string({"action_type": "CLICK_COORDS", "coords": np.array([10.5, 20.0])}) == (
        "click_xy(x=10.5, y=20)"
    )
    assert adapter.to_action_string({"action_type": 5, "ref": 3, "text": 'say "hi"'}) == (
        'type(ref=3, text="say \\"hi\\"")'
    )
    # a kind outside the grammar is named, not refused: the wrappers score native actions of any action space
    assert adapter.to_action_string({"action_type": "SCROLL_UP_COORDS", "coords": np.zeros(2)}) == (
        "scroll_up_xy(x=0, y=0)"
    )
    with pytest.raises(ValueError, match="not an index into this env's 6 action types"):
        adapter.to_action_string({"action_type": 9})
    assert task_name("miniwob/use-autocomplete-v1") == "use-autocomplete"


# ----------------------------------------------------------------------------- real browser


def _ref(state: GUIState, pred: Callable) -> int:
    matches = [el.ref for el in state.elements if pred(el)]
    assert matches, f"no element matches in\n{state.observation_text}"
    return matches[0]


def _solve_click_checkboxes(s: GUIState) -> str:
    targets = {v for k, v in s.fields.items() if k.startswith("target")}
    for el in s.elements:
        if el.tag == "input_checkbox" and (el.text in targets) != (el.value == "checked"):
            return f"click(ref={el.ref})"
    return f"click(ref={_ref(s, lambda e: e.tag == 'button')})"


def _solve_login(s: GUIState) -> str:
    user = _ref(s, lambda e: e.tag == "input_text")
    pwd = _ref(s, lambda e: e.tag == "input_password")
    if s.element(user).value != s.fields["username"]:
        return f'type(ref={user}, text="{s.fields["username"]}")'
    if s.element(pwd).value != s.fields["password"]:
        return f'type(ref={pwd}, text="{s.fields["password"]}")'
    return f"click(ref={_ref(s, lambda e: e.tag == 'button')})"


def _type_then_submit(tag: str, field: str) -> Callable[[GUIState], str]:
    def solve(s: GUIState) -> str:
        box = _ref(s, lambda e: e.tag == tag)
        if s.element(box).value != s.fields[field]:
            return f'type(ref={box}, text="{s.fields[field]}")'
        return f"click(ref={_ref(s, lambda e: e.tag == 'button')})"

    return solve


def _solve_autocomplete(s: GUIState) -> str:
    box = _ref(s, lambda e: e.tag == "input_text")
    start, end = s.fields["start"], s.fields.get("end", "")
    value = s.element(box).value
    items = [e for e in s.elements if e.tag == "div" and e.text.startswith(start) and e.text.endswith(end)]
    if not value:
        return f'type(ref={box}, text="{start}")'
    if items and value != items[0].text:
        return f"click(ref={items[0].ref})"
    return f"click(ref={_ref(s, lambda e: e.tag == 'button')})"


#: family -> a scripted solver (state -> next action); it proves the adapter can complete each task.
SOLVERS: dict[str, Callable[[GUIState], str]] = {
    "click-button": lambda s: (
        f"click(ref={_ref(s, lambda e: e.tag == 'button' and e.text == s.fields['target'])})"
    ),
    "click-checkboxes": _solve_click_checkboxes,
    "enter-text": _type_then_submit("input_text", "target"),
    "login-user": _solve_login,
    "click-tab": lambda s: f"click(ref={_ref(s, lambda e: e.text == 'Tab #' + s.fields['target'])})",
    "choose-list": _type_then_submit("select", "target"),
    "use-autocomplete": _solve_autocomplete,
    "click-link": lambda s: (
        f"click(ref={_ref(s, lambda e: e.tag == 'span' and e.text == s.fields['target'])})"
    ),
    "focus-text": lambda s: f"click(ref={_ref(s, lambda e: e.tag == 'input_text')})",
}


@browser
@needs_browser
@pytest.mark.parametrize("family", list(SOLVERS))
def test_family_reset_candidates_step_and_solve(family):
    env, adapter = make_env(f"miniwob/{family}-v1")
    try:
        state, info = adapter.reset(env, seed=7)
        assert state.instruction and state.instruction != "(no instruction)"
        assert state.screenshot.shape == (210, 160, 3) and state.screenshot.dtype == np.uint8
        assert state.screenshot.std() > 0  # something is drawn
        assert state.observation_text.startswith("[") and len(state.observation_text) < 3000
        refs = {el.ref for el in state.elements}
        cands = adapter.candidates(state)
        assert cands and len(cands) <= 60
        for c in cands:
            action = parse_action(c)
            assert action.ref is None or action.ref in refs
        for _ in range(8):
            action = SOLVERS[family](state)
            outcome = adapter.step(env, action)
            if outcome.done:
                break
            assert outcome.reward == 0.0 and outcome.state.screenshot.shape == (210, 160, 3)
            state = outcome.state
        assert outcome.done and outcome.success, f"{family}: {outcome.reward} after {action}"
        assert 0.5 < outcome.reward <= 1.0  # time-discounted MiniWoB reward
    finally:
        env.close()


@pytest.fixture(scope="module")
def click_env() -> Iterator[tuple]:
    if not HAS_BROWSER:
        pytest.skip("chromium/chromedriver not installed")
    env, adapter = make_env("miniwob/login-user-v1")
    yield env, adapter
    env.close()


@browser
def test_replay_is_deterministic_after_other_episodes(click_env):
    env, adapter = click_env
    state, _ = adapter.reset(env, seed=3)
    user = _ref(state, lambda e: e.tag == "input_text")
    prefix = [f'type(ref={user}, text="{state.fields["username"]}")', f"click(ref={user})"]
    results = []
    for other_seed in (11, 12):
        other, _ = adapter.reset(env, seed=other_seed)  # leave focus/text behind in between
        adapter.step(env, adapter.candidates(other)[-1])
        for prefix_len in (0, 2):
            rebuilt, _ = adapter.rebuild(env, 3, prefix[:prefix_len])
            results.append((prefix_len, rebuilt))
    for prefix_len in (0, 2):
        first, second = (s for n, s in results if n == prefix_len)
        assert first.observation_text == second.observation_text
        assert np.array_equal(first.screenshot, second.screenshot)
    assert "focused" in results[1][1].observation_text  # the replayed prefix really acted


@browser
def test_bad_actions_give_clear_errors(click_env):
    env, adapter = click_env
    state, _ = adapter.reset(env, seed=5)
    with pytest.raises(ActionParseError, match="Valid actions"):
        adapter.step(env, "click(5)")
    with pytest.raises(InvalidActionError, match=r"ref 999 is not an element.*valid refs include"):
        adapter.step(env, "click(ref=999)")
    with pytest.raises(InvalidActionError, match="not allowed"):
        adapter.step(env, 'press(key="F13")')
    with pytest.raises(InvalidActionError, match="off the 160x210"):
        adapter.step(env, "click_xy(x=500, y=10)")
    with pytest.raises(InvalidActionError, match="at most 64"):
        adapter.step(env, f'type(ref={state.elements[0].ref}, text="{"x" * 65}")')
    # nothing above was executed: the env still runs
    outcome = adapter.step(env, "noop()")
    assert not outcome.done and outcome.state.observation_text == state.observation_text


@browser
def test_type_replaces_the_text_and_to_action_string_round_trips(click_env):
    env, adapter = click_env
    state, _ = adapter.reset(env, seed=8)
    user = _ref(state, lambda e: e.tag == "input_text")
    adapter.step(env, f'type(ref={user}, text="abc")')
    outcome = adapter.step(env, f'type(ref={user}, text="xy")')
    assert outcome.state.element(user).value == "xy"  # replaced, not appended
    for action in [
        f"click(ref={user})",
        f'type(ref={user}, text="q")',
        'press(key="Tab")',
        "click_xy(x=3, y=4.5)",
    ]:
        assert adapter.to_action_string(adapter.to_env_action(env, action)) == action


def test_demo_command_prints_steps_on_the_toy_env(capsys, tmp_path):
    from similar_rl.cli import main

    argv = ["demo", "--families", "toy/click-button", "--episodes", "2", "--seed", "3"]
    argv += ["--model", "none", "--parts", "episodes", "--no-wandb", "--out", str(tmp_path)]  # part 1 only
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("episode ") == 2 and "step  1" in out and "reward=" in out and "solved" in out


@browser
def test_missing_or_broken_browser_raises_env_failure():
    with pytest.raises(EnvFailure, match=r"chromium not found.*install_browser\.sh"):
        MiniWoBAdapter(chrome_binary="/nonexistent/chromium").make_env("miniwob/click-button-v1")
    with pytest.raises(EnvFailure, match=r"chromium/chromedriver failed to start.*install_browser\.sh"):
        make_env("miniwob/click-button-v1", chrome_binary="/bin/false")


def test_unknown_env_id_is_a_clear_error():
    pytest.importorskip("miniwob")
    with pytest.raises(ValueError, match="unknown MiniWoB"):
        MiniWoBAdapter().make_env("miniwob/no-such-task-v1")
