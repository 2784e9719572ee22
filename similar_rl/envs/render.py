"""Compact text rendering of GUI elements for language models and logs (shared by all adapters).

One element per line: ``[ref] tag "text"`` followed, when set, by ``(value="...", focused)``.

Example:
    >>> from similar_rl.types import Element
    >>> print(render_elements([
    ...     Element(ref=1, tag="input_text", text="Username", value="bob", focused=True, typeable=True),
    ...     Element(ref=2, tag="button", text="Login"),
    ... ]))
    [1] input_text "Username" (value="bob", focused)
    [2] button "Login"
"""

from __future__ import annotations

import json
from collections.abc import Sequence

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
