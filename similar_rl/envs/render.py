"""The observation-text grammar: GUI elements rendered as text for language models and logs, and parsed back.

One element per line: ``[ref] tag "text"`` followed, when set, by ``(value="...", focused)``; texts and values are
JSON-quoted. Every adapter renders with :func:`render_elements`; the reward model and the baselines read the text
back with :func:`parse_observation` (lines that are not element lines are ignored).

Example (a round trip):
    >>> from similar_rl.types import Element
    >>> page = [
    ...     Element(ref=1, tag="input_text", text='Say "hi"', value="bob", focused=True, typeable=True),
    ...     Element(ref=2, tag="button", text="Login"),
    ... ]
    >>> print(render_elements(page))
    [1] input_text "Say \\"hi\\"" (value="bob", focused)
    [2] button "Login"
    >>> lines = [render_elements(page), "... (3 more elements not shown)"]
    >>> back = parse_observation(chr(10).join(lines))
    >>> [(e.ref, e.tag, e.text, e.value, e.focused) for e in back.values()]
    [(1, 'input_text', 'Say "hi"', 'bob', True), (2, 'button', 'Login', '', False)]
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from similar_rl.types import Element


def _quote(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    if len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return json.dumps(text, ensure_ascii=False)


def render_element(element: Element, max_chars: int = 80) -> str:
    """One line for one element (see the module docstring)."""
    line = f"[{element.ref}] {element.tag} {_quote(element.text, max_chars)}"
    extras = []
    if element.value:
        extras.append(f"value={_quote(element.value, max_chars)}")
    if element.focused:
        extras.append("focused")
    return f"{line} ({', '.join(extras)})" if extras else line


def render_elements(elements: Sequence[Element], max_chars: int = 80) -> str:
    """Render elements one per line; texts and values are JSON-quoted and cut at ``max_chars`` characters."""
    return "\n".join(render_element(el, max_chars) for el in elements)


_LINE = re.compile(r'^\s*\[(\d+)\]\s*([^\s"]*)\s*(.*)$')


@dataclass(frozen=True)
class ElementLine:
    """One parsed ``[ref] tag "text" (value=..., focused)`` line of an observation text."""

    ref: int
    tag: str
    text: str
    value: str
    focused: bool


def _json_prefix(raw: str) -> tuple[str, str]:
    """Split a leading JSON string off ``raw``; return (decoded, rest). Falls back to the raw text."""
    raw = raw.strip()
    if raw.startswith('"'):
        with contextlib.suppress(json.JSONDecodeError):
            value, end = json.JSONDecoder().raw_decode(raw)  # a JSON value that starts with '"' is a string
            return value, raw[end:]
    return raw, ""


def parse_observation(observation_text: str | None) -> dict[int, ElementLine]:
    """Parse element lines out of an observation text; lines that do not match are ignored.

    Example:
        >>> parse_observation('[1] link "Home"\\nsome other line')[1].text
        'Home'
    """
    elements: dict[int, ElementLine] = {}
    for match in filter(None, map(_LINE.match, (observation_text or "").splitlines())):
        text, rest = _json_prefix(match.group(3))
        at = rest.find("value=")
        value = "" if at < 0 else _json_prefix(rest[at + len("value=") :])[0]
        ref = int(match.group(1))
        elements.setdefault(ref, ElementLine(ref, match.group(2), text, value, "focused" in rest))
    return elements
