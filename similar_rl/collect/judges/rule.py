"""A rule-based judge of task relevance and coherence for environments that expose their elements (DOM).

The rules are deliberately conservative: an action is irrelevant (``task_relevance = 0``) or incoherent
(``coherence = 0``) only when it is clearly so; anything the rules cannot decide counts as 1.

Task relevance is 0 for:

1. ``noop()``, and an action string that does not parse (see :mod:`similar_rl.envs.actions`);
2. a click or type on a ref that is not on the screen;
3. a click on blank space: ``click_xy`` hitting no element, or hitting (or ``click`` naming) a container
   (an element without text of its own whose box contains other elements, or a ``body``/``html``/``form``);
4. a click on a non-interactive element (``clickable`` and ``typeable`` both False, e.g. a static label);
5. ``type`` with empty text, or into an element that is not typeable and whose text shares no word with
   the instruction;
6. a click on an element whose text shares no content word with the instruction while the instruction names
   some other element on the screen (another element's text does share a word with it). Text fields, elements
   without text, and generic controls ("Submit", "OK", "Next"...) when the instruction names no generic control
   (forms often end with an unnamed submit button) are exempt.

Coherence (relative to the previous action; the first step is coherent) is 0 for:

1. repeating the previous action where a repeat does nothing or undoes it: ``noop`` after ``noop``, the same
   ``type`` again, the same click on a checkbox (toggles it back) or radio button (no effect);
2. undoing the previous step: ``type(ref=A, text="")`` right after typing into A;
3. typing into a different text field than the one the previous step clicked to focus.

Example:
    >>> from similar_rl.types import Element, GUIState
    >>> state = GUIState("Enter bob as the username", elements=(
    ...     Element(1, "input_text", "Username", typeable=True), Element(2, "input_text", "Password", typeable=True)))
    >>> v = RuleJudge().judge(state, ["click(ref=1)"], ['type(ref=2, text="bob")'])[0]
    >>> v.task_relevance, v.coherence
    (1.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

from similar_rl.envs.actions import Action, ActionParseError, parse_action
from similar_rl.text import words
from similar_rl.types import Element, GUIState, JudgeVerdict

_STOPWORDS_TEXT = """
    a an the and or of to in on at for with from by as is it this that then than be your you me my
    click press select choose enter type tap hit find go set check uncheck mark pick fill input write put open
    button buttons link links box boxes field fields item items option options element tab tabs page form text
    please all any only one two three first last next following below above under into onto out up down
"""
#: Words that name no particular element (verbs, articles, UI words); ignored by the overlap rule.
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_GENERIC_TEXT = """
    submit ok okay done next search login log sign continue confirm yes no save apply send go cancel close
    back previous prev finish enter
"""
#: Controls that finish or advance a task; clicking them is never "unrelated" (instructions rarely name them).
GENERIC_CONTROLS = frozenset(_GENERIC_TEXT.split())
#: Tags that are containers whatever their size.
CONTAINER_TAGS = frozenset({"body", "html", "form"})


def content_words(text: str) -> set[str]:
    """Lower-case alphanumeric words of ``text`` without :data:`STOPWORDS`.

    Example:
        >>> sorted(content_words('Click the "Cancel" button, then OK'))
        ['cancel', 'ok']
    """
    return set(words(text, STOPWORDS))


def _contains(outer: Element, inner: Element) -> bool:
    return (
        outer.ref != inner.ref
        and outer.width * outer.height > inner.width * inner.height
        and outer.left <= inner.left
        and outer.top <= inner.top
        and inner.left + inner.width <= outer.left + outer.width
        and inner.top + inner.height <= outer.top + outer.height
    )


def is_container(el: Element, state: GUIState) -> bool:
    """A container: a body/html/form, or a text-less element whose box holds another element."""
    if el.tag.lower() in CONTAINER_TAGS:
        return True
    if el.text.strip() or el.typeable:
        return False
    return any(_contains(el, other) for other in state.elements)


def element_at(state: GUIState, x: float, y: float) -> Element | None:
    """The innermost (smallest) element whose box contains the point, or None."""
    hits = [
        el
        for el in state.elements
        if el.width > 0
        and el.height > 0
        and el.left <= x <= el.left + el.width
        and el.top <= y <= el.top + el.height
    ]
    return min(hits, key=lambda el: el.width * el.height) if hits else None


class RuleJudge:
    """Task relevance and coherence from rules over :attr:`GUIState.elements` (see the module docstring).

    Args:
        generic_controls: words of controls that are always relevant (default :data:`GENERIC_CONTROLS`).
    """

    name = "rule"

    def __init__(self, generic_controls: Sequence[str] | None = None) -> None:
        self.generic_controls = (
            frozenset(generic_controls) if generic_controls is not None else GENERIC_CONTROLS
        )

    def judge(self, state: GUIState, history: Sequence[str], actions: Sequence[str]) -> list[JudgeVerdict]:
        """One verdict per candidate action, in order."""
        previous = history[-1] if history else None
        return [self._judge_one(state, previous, action) for action in actions]

    # -- one candidate ---------------------------------------------------------------------------------------
    def _judge_one(self, state: GUIState, previous: str | None, action_text: str) -> JudgeVerdict:
        try:
            action = parse_action(action_text)
        except ActionParseError as exc:
            return JudgeVerdict(0.0, 0.0, reason=f"not a valid action: {exc.problem}")
        relevant, why_r = self._relevance(state, action)
        coherent, why_c = self._coherence(state, previous, action)
        return JudgeVerdict(
            float(relevant), float(coherent), reason=f"relevance: {why_r}; coherence: {why_c}"
        )

    def _target(self, state: GUIState, action: Action) -> tuple[Element | None, str]:
        if action.kind == "click_xy":
            el = element_at(state, float(action.x or 0), float(action.y or 0))
            return el, "" if el is not None else f"click at ({action.x:g}, {action.y:g}) hits no element"
        el = state.element(int(action.ref or 0))
        return el, "" if el is not None else f"no element with ref {action.ref} on the screen"

    def _relevance(self, state: GUIState, action: Action) -> tuple[bool, str]:
        if action.kind == "noop":
            return False, "noop does nothing"
        if action.kind == "press":
            return True, "key presses are not judged by rules"
        el, missing = self._target(state, action)
        if el is None:
            return False, missing
        if action.kind == "type":
            if not (action.text or "").strip():
                return False, "types empty text"
            if el.typeable:
                return True, f"types into text field {el.ref}"
            if content_words(el.text) & content_words(state.instruction):
                return True, "element text matches the instruction"
            return False, f"types into {el.tag} {el.ref}, which is not a text field"
        if is_container(el, state):
            return False, f"clicks blank space ({el.tag} {el.ref} is a container)"
        if not el.clickable and not el.typeable:
            return False, f"{el.tag} {el.ref} {el.text[:30]!r} is not interactive"
        return self._overlap(state, el)

    def _overlap(self, state: GUIState, el: Element) -> tuple[bool, str]:
        if el.typeable:
            return True, f"focuses text field {el.ref}"
        el_words = content_words(f"{el.text} {el.value}")
        if not el_words:
            return True, f"{el.tag} {el.ref} has no text to compare"
        wanted = content_words(state.instruction)
        if el_words & wanted:
            return True, f"{el.tag} {el.ref} text matches the instruction"
        if el_words & self.generic_controls and not wanted & self.generic_controls:
            return True, f"{el.tag} {el.ref} is a generic control and the instruction names none"
        named = [
            other
            for other in state.elements
            if other.ref != el.ref and content_words(f"{other.text} {other.value}") & wanted
        ]
        if named:
            return False, (
                f"{el.tag} {el.ref} {el.text[:30]!r} shares no word with the instruction, "
                f"which names {named[0].text[:30]!r}"
            )
        return True, "nothing on the screen matches the instruction, so the rule cannot tell"

    def _coherence(self, state: GUIState, previous: str | None, action: Action) -> tuple[bool, str]:
        if previous is None:
            return True, "first step"
        try:
            prev = parse_action(previous)
        except ActionParseError:
            return True, "previous action unreadable"
        if prev == action:
            if action.kind in ("noop", "type"):
                return False, f"repeats {action.kind} with no effect"
            if action.kind in ("click", "click_xy"):
                el = self._target(state, action)[0]
                desc = "" if el is None else f"{el.tag} {el.classes}".lower()
                if "checkbox" in desc:
                    return False, "clicks the same checkbox again (undoes the previous step)"
                if "radio" in desc:
                    return False, "clicks the same radio button again (no effect)"
            return True, "repeat of an action that may have an effect"
        retyped = action.kind == "type" and prev.kind == "type" and prev.ref == action.ref
        if retyped and not action.text and prev.text:
            return False, "clears the text the previous step typed"
        if action.kind == "type" and prev.kind == "click" and prev.ref != action.ref:
            focused = state.element(int(prev.ref or 0))
            target = state.element(int(action.ref or 0))
            if focused is not None and focused.typeable and target is not None and target.typeable:
                return False, f"previous step focused field {prev.ref} but this types into field {action.ref}"
        return True, "follows the previous step"
