"""The prompt and the strict answer parser shared by the model-based judges.

The judge is asked for one JSON object and nothing else::

    {"verdicts": [{"candidate": 1, "task_relevance": 1, "coherence": 0, "reason": "..."}, ...]}

with exactly one entry per candidate (numbered from 1), and 0 or 1 for both labels. :func:`parse_verdicts`
accepts that object, optionally inside one Markdown code fence, and rejects everything else with a
:class:`VerdictParseError` that says what is wrong (the message is sent back to the model on a retry).

Example:
    >>> parse_verdicts('{"verdicts": [{"candidate": 1, "task_relevance": 1, "coherence": 0}]}', 1)
    [JudgeVerdict(task_relevance=1.0, coherence=0.0, reason='', error=None)]
    >>> parse_verdicts("Sure! Both look fine.", 1)
    Traceback (most recent call last):
    ...
    similar_rl.collect.judges.prompt.VerdictParseError: the answer is not a JSON object: Expecting value at char 0
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Sequence
from typing import Any

from similar_rl.types import GUIState, JudgeVerdict, as_rgb_array

SYSTEM_PROMPT = """\
You review actions that a software agent might take on a graphical user interface.
For each candidate action, give two yes/no labels:
- task_relevance: 1 if the action has anything to do with the task at all, 0 only if it is clearly meaningless \
for the task (doing nothing, clicking empty space or a static label, acting on something the task never asks about).
- coherence: 1 if the action is a sensible continuation of the previous action, 0 if it contradicts or undoes it, \
repeats it to no effect, or abandons what the previous action started. With no previous action, coherence is 1.
Judge each candidate on its own; do not compare them. Actions use this syntax: click(ref=N) clicks element N, \
click_xy(x=X, y=Y) clicks a screen position, type(ref=N, text="...") types into element N, press(key="...") \
presses a key, noop() does nothing.
Reply with one JSON object and nothing else, in this form:
{"verdicts": [{"candidate": 1, "task_relevance": 0 or 1, "coherence": 0 or 1, "reason": "a few words"}]}
with exactly one entry per candidate."""

MAX_SCREEN_TEXT = 6000


class VerdictParseError(ValueError):
    """A judge answer that does not follow the required JSON form."""


def build_user_prompt(state: GUIState, history: Sequence[str], actions: Sequence[str]) -> str:
    """The user message: task, screen text, previous actions and the numbered candidates."""
    screen = state.observation_text or "(no text rendering of the screen)"
    if len(screen) > MAX_SCREEN_TEXT:
        screen = screen[:MAX_SCREEN_TEXT] + "\n... (truncated)"
    earlier = (
        "\n".join(f"{k}. {a}" for k, a in enumerate(history, start=1)) or "(none: this is the first step)"
    )
    previous = history[-1] if history else "(none)"
    candidates = "\n".join(f"Candidate {k}: {a}" for k, a in enumerate(actions, start=1))
    return (
        f"Task: {state.instruction}\n\n"
        f"Screen elements:\n{screen}\n\n"
        f"Actions taken so far:\n{earlier}\n"
        f"Previous action: {previous}\n\n"
        f"{candidates}\n\n"
        f"Answer with the JSON object for all {len(actions)} candidate(s)."
    )


_FENCE = re.compile(r"^```[A-Za-z]*\s*\n(.*)\n\s*```$", re.DOTALL)


def _label(entry: dict[str, Any], key: str, k: int) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in (0, 1):
        raise VerdictParseError(f"candidate {k}: {key} must be 0 or 1, got {value!r}")
    return float(value)


def parse_verdicts(text: str, n: int) -> list[JudgeVerdict]:
    """Parse a judge answer for ``n`` candidates strictly (see the module docstring).

    Raises:
        VerdictParseError: the answer is not exactly the required JSON object.
    """
    body = text.strip()
    if fenced := _FENCE.match(body):
        body = fenced.group(1).strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise VerdictParseError(f"the answer is not a JSON object: {exc.msg} at char {exc.pos}") from None
    if not isinstance(data, dict) or not isinstance(data.get("verdicts"), list):
        raise VerdictParseError('the answer must be an object with a "verdicts" list')
    entries = data["verdicts"]
    if len(entries) != n:
        raise VerdictParseError(f"expected {n} verdict(s), got {len(entries)}")
    by_index: dict[int, JudgeVerdict] = {}
    for pos, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise VerdictParseError(f"verdict {pos} must be an object")
        k = entry.get("candidate", pos)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n or k in by_index:
            raise VerdictParseError(
                f"verdict {pos}: candidate must be a distinct number from 1 to {n}, got {k!r}"
            )
        reason = entry.get("reason", "")
        if not isinstance(reason, str):
            raise VerdictParseError(f"candidate {k}: reason must be a string")
        by_index[k] = JudgeVerdict(
            _label(entry, "task_relevance", k), _label(entry, "coherence", k), reason=reason
        )
    return [by_index[k] for k in range(1, n + 1)]


def png_base64(screenshot: Any) -> str:
    """A screenshot (array or PIL image) as base64-encoded PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(as_rgb_array(screenshot)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
