"""Make action strings meaningful to a text encoder, and cheap structural features of (state, action).

``click(ref=12)`` says nothing by itself; resolved against the observation text (one ``[ref] tag "text"`` line per
element, see :mod:`similar_rl.envs.render`) it becomes ``click button "Submit"``.

Example:
    >>> obs = '[3] input_text "Username" (value="bob", focused)\\n[12] button "Submit"'
    >>> describe_action("click(ref=12)", obs)
    'click button "Submit"'
    >>> describe_action('type(ref=3, text="alice")', obs)
    'type "alice" into input_text "Username"'
    >>> describe_action("click(ref=99)", obs)
    'click unknown element 99'
    >>> describe_action("jump!", obs)
    'invalid action: jump!'
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from similar_rl.envs.actions import Action, parse_action
from similar_rl.envs.render import ElementLine, parse_observation
from similar_rl.text import words

ACTION_KINDS: tuple[str, ...] = ("click", "click_xy", "type", "press", "noop", "invalid")


def try_parse(action: str) -> Action | None:
    """Parse an action string, or return None if it is malformed."""
    try:
        return parse_action(action)
    except (ValueError, TypeError):
        return None


def _element_phrase(ref: int | None, elements: dict[int, ElementLine]) -> str:
    element = elements.get(ref) if ref is not None else None
    if element is None:
        return f"unknown element {ref}"
    text = json.dumps(element.text, ensure_ascii=False) if element.text else "(no text)"
    return f"{element.tag or 'element'} {text}".strip()


def describe_action(
    action: str, observation_text: str | None = None, elements: dict[int, ElementLine] | None = None
) -> str:
    """Render an action string as a short natural phrase, resolving element refs against the observation."""
    if elements is None:
        elements = parse_observation(observation_text)
    parsed = try_parse(action)
    if parsed is None:
        return f"invalid action: {action.strip()[:200]}"
    if parsed.kind == "click":
        return "click " + _element_phrase(parsed.ref, elements)
    if parsed.kind == "type":
        target = _element_phrase(parsed.ref, elements)
        return f"type {json.dumps(parsed.text, ensure_ascii=False)} into {target}"
    if parsed.kind == "click_xy":
        return f"click at x={parsed.x:g} y={parsed.y:g}"
    if parsed.kind == "press":
        return f"press key {parsed.key}"
    return "do nothing"


#: Names of the values returned by :func:`structural_features`, in order.
STRUCTURAL_FEATURES: tuple[str, ...] = (
    *(f"kind_{k}" for k in ACTION_KINDS),
    "ref_found",
    "target_is_input",
    "target_focused",
    "typed_text_in_instruction",
    "typed_words_in_instruction",
    "target_words_in_instruction",
    "instruction_words_in_target",
    "repeats_last_action",
    "repeats_earlier_action",
    "history_length",
)


def structural_features(
    instruction: str,
    action: str,
    history: Sequence[str],
    elements: dict[int, ElementLine],
    use_history: bool = True,
) -> list[float]:
    """Cheap hand-made features of one (state, action), named by :data:`STRUCTURAL_FEATURES`.

    Example:
        >>> obs = parse_observation('[2] button "Submit"')
        >>> f = structural_features("Click Submit", "click(ref=2)", ["click(ref=2)"], obs)
        >>> dict(zip(STRUCTURAL_FEATURES, f))["target_words_in_instruction"], f[STRUCTURAL_FEATURES.index("repeats_last_action")]
        (1.0, 1.0)
    """
    parsed = try_parse(action)
    kind = parsed.kind if parsed is not None else "invalid"
    out = [1.0 if kind == k else 0.0 for k in ACTION_KINDS]
    element = elements.get(parsed.ref) if parsed is not None and parsed.ref is not None else None
    instr_words = set(words(instruction))
    target_words = set(words(f"{element.text} {element.value}")) if element is not None else set()
    typed = (parsed.text or "") if parsed is not None and kind == "type" else ""
    typed_words = set(words(typed))
    out += [
        1.0 if element is not None else 0.0,
        1.0 if element is not None and ("input" in element.tag or "textarea" in element.tag) else 0.0,
        1.0 if element is not None and element.focused else 0.0,
        1.0 if typed.strip() and typed.strip().lower() in instruction.lower() else 0.0,
        len(typed_words & instr_words) / len(typed_words) if typed_words else 0.0,
        len(target_words & instr_words) / len(target_words) if target_words else 0.0,
        len(target_words & instr_words) / len(instr_words) if instr_words and target_words else 0.0,
    ]
    if use_history and history:
        norm = action.strip()
        out += [
            1.0 if history[-1].strip() == norm else 0.0,
            1.0 if norm in [h.strip() for h in history[:-1]] else 0.0,
            min(len(history), 20) / 20,
        ]
    else:
        out += [0.0, 0.0, 0.0]
    return out
