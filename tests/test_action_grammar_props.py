"""Property tests of the action grammar (similar_rl/envs/actions.py).

- ``parse_action(format_action(a)) == a`` for random valid actions, and formatting is canonical;
- random strings make ``parse_action`` raise only ``ActionParseError`` (or ``TypeError`` for non-strings);
- ``extract_action`` never crashes, agrees with a plain reference scan, and stays fast on adversarial text.
"""

from __future__ import annotations

import contextlib
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from similar_rl.envs.actions import (
    ACTION_SIGNATURES,
    MAX_ACTION_CHARS,
    Action,
    ActionParseError,
    extract_action,
    format_action,
    normalize_action,
    parse_action,
)

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
_ints = st.integers(-(10**12), 10**12)
_floats = st.floats(allow_nan=False, allow_infinity=False, width=64) | st.integers(-5000, 5000).map(float)


def _action(kind: str) -> st.SearchStrategy[Action]:
    strategies = {"ref": _ints, "x": _floats, "y": _floats, "text": _text, "key": _text}
    args = {name: strategies[name] for name, _ in ACTION_SIGNATURES[kind]}
    return st.fixed_dictionaries(args).map(lambda values: Action(kind, **values))


actions = st.sampled_from(sorted(ACTION_SIGNATURES)).flatmap(_action)
PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(actions)
def test_parse_of_format_is_identity_and_canonical(action):
    text = format_action(action)
    back = parse_action(text)
    assert back == action
    for name in ("x", "y"):  # -0.0 == 0.0, so compare the values exactly where it matters
        if getattr(action, name) is not None:
            assert math.isclose(getattr(back, name), getattr(action, name), rel_tol=0, abs_tol=0)
    assert format_action(back) == text
    assert normalize_action(text) == text


def _spaced(action: Action, pad: str) -> str:
    """``action`` written with ``pad`` around every token."""
    parts = []
    for name, typ in ACTION_SIGNATURES[action.kind]:
        value = getattr(action, name)
        if typ is str:
            raw = format_action(Action("press", key=value))[len("press(key=") : -1]
        elif typ is int:
            raw = str(value)
        else:
            raw = format_action(Action("click_xy", x=value, y=0.0)).split(",")[0][len("click_xy(x=") :]
        parts.append(f"{pad}{name}{pad}={pad}{raw}{pad}")
    return f"{pad}{action.kind}{pad}({','.join(parts)}){pad}"


@PROPS
@given(actions, st.sampled_from(["", " ", "  \n", "\t"]))
def test_whitespace_around_tokens_is_accepted(action, pad):
    spaced = _spaced(action, pad)
    if len(spaced) <= MAX_ACTION_CHARS:
        assert parse_action(spaced) == action


@PROPS
@given(
    st.text(max_size=200)
    | st.text(alphabet='clickxypetnoprs_()=,"\\ 0123456789.-+eE', max_size=80)
    | st.builds(lambda k, b: f"{k}({b})", st.sampled_from(sorted(ACTION_SIGNATURES)), st.text(max_size=60))
)
def test_random_strings_raise_only_action_parse_error(text):
    try:
        action = parse_action(text)
    except ActionParseError as exc:
        assert "Valid actions:" in str(exc) and exc.problem
        return
    # whatever parses is a complete, well-typed action that re-formats to a parseable canonical string
    assert action.kind in ACTION_SIGNATURES
    for name, typ in ACTION_SIGNATURES[action.kind]:
        assert isinstance(getattr(action, name), typ)
    assert parse_action(format_action(action)) == action


@pytest.mark.parametrize("value", [None, 3, b"noop()", ["noop()"], Action("noop")])
def test_non_strings_raise_type_error(value):
    with pytest.raises(TypeError, match="must be a string"):
        parse_action(value)
    with pytest.raises(TypeError, match="must be a string"):
        extract_action(value)


def test_over_long_actions_are_refused_with_the_limit():
    text = format_action(Action("type", ref=1, text="a" * MAX_ACTION_CHARS))
    with pytest.raises(ActionParseError, match=f"at most {MAX_ACTION_CHARS}"):
        parse_action(text)


def _reference_extract(completion: str) -> Action:
    """The obvious quadratic scan: try every call start, last first, up to its first ')' outside a string."""
    import re

    starts = [m.start() for m in re.finditer(r"\b(click_xy|click|type|press|noop)\s*\(", completion)]
    for start in reversed(starts):
        i, in_str, escaped, end = completion.index("(", start) + 1, False, False, None
        while i < len(completion):
            ch = completion[i]
            if in_str:
                escaped, in_str = (False, in_str) if escaped else (ch == "\\", ch != '"')
            elif ch == '"':
                in_str = True
            elif ch == ")":
                end = i + 1
                break
            i += 1
        if end is None:
            continue
        try:
            return parse_action(completion[start:end])
        except ActionParseError:
            continue
    raise ActionParseError("none")


_noise = st.text(alphabet='abc ()=,"\\\n:', max_size=30)


@PROPS
@given(st.lists(st.one_of(_noise, actions.map(format_action), st.just('type(ref=1, text="')), max_size=6))
def test_extract_action_never_crashes_and_matches_the_reference(parts):
    completion = " ".join(parts)
    try:
        expected = _reference_extract(completion)
    except ActionParseError:
        with pytest.raises(ActionParseError, match="no valid action"):
            extract_action(completion)
        return
    assert extract_action(completion) == expected


@PROPS
@given(st.text(max_size=300))
def test_extract_action_on_random_text_raises_only_action_parse_error(text):
    with contextlib.suppress(ActionParseError):
        extract_action(text)


@PROPS
@given(actions, st.text(alphabet='abc =,"\\\n:', max_size=40))
def test_extract_action_finds_the_action_after_thinking_aloud(action, thought):
    assert extract_action(f"{thought}\nAction: {format_action(action)}") == action


@pytest.mark.parametrize("unit", ["click(", 'click("', 'type(ref=1, text="\\', "noop( ( ( "])
def test_extract_action_is_linear_on_adversarial_text(unit):
    def cost(chars: int) -> float:  # best of three: robust to a busy machine
        completion = unit * (chars // len(unit))  # many call starts and no closing parenthesis
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            with pytest.raises(ActionParseError):
                extract_action(completion)
            times.append(time.perf_counter() - t0)
        return min(times)

    # linear: 8x the text costs about 8x; the unbounded scan was quadratic (64x; ~30 s on 30 000 characters)
    assert cost(64_000) < 24 * cost(8_000) + 0.05
