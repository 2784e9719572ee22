"""The action-string grammar shared by policies, adapters, reward functions and datasets.

One action per string, written as a call with keyword arguments::

    click(ref=12)                      click the element with ref 12
    click_xy(x=80, y=105)              click at screen coordinates (pixels, may be fractional)
    type(ref=5, text="hello world")    focus element 5 and type the text
    press(key="Enter")                 press a key or key combination
    noop()                             do nothing

Text values are JSON strings (double quotes, backslash escapes). Whitespace around tokens is allowed;
anything else is rejected with a :class:`ActionParseError` (a ``ValueError``) that says what is wrong and
shows this grammar.

Example:
    >>> parse_action('type(ref=5, text="hi")')
    Action(kind='type', ref=5, x=None, y=None, text='hi', key=None)
    >>> format_action(Action("click", ref=3))
    'click(ref=3)'
    >>> parse_action("click(3)")
    Traceback (most recent call last):
    ...
    similar_rl.envs.actions.ActionParseError: argument 1 of click(...) must be written name=value: '3'
    Valid actions:
      click(ref=INT)
      click_xy(x=NUMBER, y=NUMBER)
      type(ref=INT, text="TEXT")
      press(key="KEY")
      noop()
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass

#: Each action kind and its arguments, in canonical order, with their types.
ACTION_SIGNATURES: dict[str, tuple[tuple[str, type], ...]] = {
    "click": (("ref", int),),
    "click_xy": (("x", float), ("y", float)),
    "type": (("ref", int), ("text", str)),
    "press": (("key", str),),
    "noop": (),
}
MAX_ACTION_CHARS = 2000
#: The action that does nothing (a state's own value is scored as this action; a policy with no candidate proposes it).
NOOP = "noop()"

_PLACEHOLDER = {"ref": "INT", "x": "NUMBER", "y": "NUMBER", "text": '"TEXT"', "key": '"KEY"'}


def _signature_text(kind: str) -> str:
    args = ", ".join(f"{name}={_PLACEHOLDER[name]}" for name, _ in ACTION_SIGNATURES[kind])
    return f"  {kind}({args})"


GRAMMAR = "\n".join(_signature_text(kind) for kind in ACTION_SIGNATURES)

_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$", re.DOTALL)
_INT = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FIND = re.compile(r"\b(click_xy|click|type|press|noop)\s*\(")
# The argument list of a call: plain characters or complete JSON strings up to the first ")" outside a string.
_CALL_BODY = re.compile(r'(?:[^")]++|"(?:[^"\\]++|\\.)*+")*+\)', re.DOTALL)  # possessive: linear time
# One argument: plain characters or complete JSON strings up to the first "," outside a string.
_ARG = re.compile(r'(?:[^",]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)


class ActionParseError(ValueError):
    """A malformed action string. The message says what is wrong and lists the grammar."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}\nValid actions:\n{GRAMMAR}")
        self.problem = problem


@dataclass(frozen=True)
class Action:
    """A parsed action. Only the fields of its kind are set."""

    kind: str
    ref: int | None = None
    x: float | None = None
    y: float | None = None
    text: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        return format_action(self)


def _split_args(body: str) -> list[str]:
    """Split on commas outside JSON strings."""
    parts, pos = [], 0
    while True:
        end = _ARG.match(body, pos).end()  # type: ignore[union-attr]  # matches at least ""
        parts.append(body[pos:end])
        if end == len(body):
            break
        if body[end] == '"':  # a quote that no later quote closes
            raise ActionParseError("unterminated string: a text value needs a closing double quote")
        pos = end + 1
    return [] if len(parts) == 1 and not parts[0].strip() else parts


def _convert(kind: str, name: str, typ: type, raw: str) -> int | float | str:
    arg = f"{kind}(...) argument {name}"
    if typ is int:
        if not _INT.match(raw):
            raise ActionParseError(f"{arg} must be an integer, got {raw!r}")
        return int(raw)
    if typ is float:
        if not _NUMBER.match(raw):
            raise ActionParseError(f"{arg} must be a number, got {raw!r}")
        value = float(raw)
        if not math.isfinite(value):
            raise ActionParseError(f"{arg} must be finite, got {raw!r}")
        return value
    if not (raw.startswith('"') and raw.endswith('"') and len(raw) >= 2):
        raise ActionParseError(f"{arg} must be a double-quoted string, got {raw!r}")
    try:
        return json.loads(raw)  # a JSON document that starts with '"' is a string
    except json.JSONDecodeError as exc:
        raise ActionParseError(f"{arg} is not a valid JSON string ({exc.msg}): {raw!r}") from None


def parse_action(text: str) -> Action:
    """Parse one action string strictly. Raises :class:`ActionParseError` (a ValueError) if malformed."""
    if not isinstance(text, str):
        raise TypeError(f"an action must be a string, got {type(text).__name__}")
    if len(text) > MAX_ACTION_CHARS:
        raise ActionParseError(
            f"action string is {len(text)} characters; at most {MAX_ACTION_CHARS} are allowed"
        )
    if not text.strip():
        raise ActionParseError("empty action string")
    match = _CALL.match(text)
    if not match:
        raise ActionParseError(f"expected NAME(ARGS), got {text!r}")
    kind, body = match.group(1), match.group(2)
    if kind not in ACTION_SIGNATURES:
        raise ActionParseError(f"unknown action {kind!r}")
    signature = dict(ACTION_SIGNATURES[kind])
    values: dict[str, int | float | str] = {}
    for i, part in enumerate(_split_args(body), start=1):
        name, sep, raw = part.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name.isidentifier():
            raise ActionParseError(
                f"argument {i} of {kind}(...) must be written name=value: {part.strip()!r}"
            )
        if name not in signature:
            raise ActionParseError(
                f"{kind}(...) has no argument {name!r}; it takes {list(signature) or 'none'}"
            )
        if name in values:
            raise ActionParseError(f"{kind}(...) argument {name} is given twice")
        values[name] = _convert(kind, name, signature[name], raw)
    missing = [n for n in signature if n not in values]
    if missing:
        raise ActionParseError(f"{kind}(...) is missing argument(s) {missing}")
    return Action(kind, **values)  # type: ignore[arg-type]


def try_parse(text: str) -> Action | None:
    """:func:`parse_action`, or None when ``text`` is malformed."""
    with contextlib.suppress(ActionParseError):
        return parse_action(text)
    return None


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def format_action(action: Action) -> str:
    """The canonical string of an action (``parse_action(format_action(a)) == a``)."""
    if action.kind not in ACTION_SIGNATURES:
        raise ValueError(f"unknown action kind {action.kind!r}; expected one of {list(ACTION_SIGNATURES)}")
    args = []
    for name, typ in ACTION_SIGNATURES[action.kind]:
        value = getattr(action, name)
        if value is None:
            raise ValueError(f"{action.kind} action needs {name}")
        if typ is str:
            args.append(f"{name}={json.dumps(value, ensure_ascii=False)}")
        elif typ is float:
            args.append(f"{name}={_format_number(value)}")
        else:
            args.append(f"{name}={int(value)}")
    return f"{action.kind}({', '.join(args)})"


def normalize_action(text: str) -> str:
    """Parse and re-format: the canonical spelling of an action string (used to deduplicate candidates).

    Example:
        >>> normalize_action(' click( ref = 7 ) ')
        'click(ref=7)'
    """
    return format_action(parse_action(text))


def extract_action(completion: str) -> Action:
    """Find the last well-formed action in free text (e.g. a language model's completion).

    The model may think aloud first; the last substring that parses wins. Raises ActionParseError if none does.

    Example:
        >>> extract_action('The OK button is ref 4, so: click(ref=4)')
        Action(kind='click', ref=4, x=None, y=None, text=None, key=None)
    """
    if not isinstance(completion, str):
        raise TypeError(f"a completion must be a string, got {type(completion).__name__}")
    for call in reversed(list(_FIND.finditer(completion))):
        # Only MAX_ACTION_CHARS from the call's start are searched: a longer call would be refused by
        # parse_action anyway, and the bound keeps this linear in the completion length.
        end = min(len(completion), call.start() + MAX_ACTION_CHARS)
        body = _CALL_BODY.match(completion, call.end(), end)
        if body is not None:
            with contextlib.suppress(ActionParseError):
                return parse_action(completion[call.start() : body.end()])
    raise ActionParseError(f"no valid action found in the completion {completion[:200]!r}")
