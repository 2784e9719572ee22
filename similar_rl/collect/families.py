"""The MiniWoB++ families this project collects on, and the ones the action grammar cannot act on.

:data:`ALLOWED_FAMILIES` is the list the shipped data, its held-out sets and every benchmark draw from; the
rest of MiniWoB++ is kept for evaluation by people outside this project, so no config or script in the
repository names it (``tests/test_families.py`` checks every config). :data:`UNACTABLE` gives, for the allowed
families whose success needs a gesture the action grammar lacks (drag, draw, text selection by mouse), the
reason, so coverage tables list them instead of dropping them.

Example:
    >>> "drag-box" in UNACTABLE and "drag-box" in ALLOWED_FAMILIES
    True
    >>> outside_allowed(["miniwob/click-button-v1", "toy/login-form", "miniwob/no-such-task-v1"])
    ['miniwob/no-such-task-v1']
"""

from __future__ import annotations

from similar_rl.envs.miniwob import task_name

_ALLOWED_TEXT = """
    ascending-numbers bisect-angle book-flight book-flight-nodelay choose-date choose-date-easy choose-date-medium
    choose-date-nodelay choose-list circle-center click-button click-button-sequence click-checkboxes
    click-checkboxes-large click-checkboxes-soft click-checkboxes-transfer click-collapsible
    click-collapsible-2-nodelay click-collapsible-nodelay click-color click-dialog click-dialog-2 click-link
    click-menu click-menu-2 click-option click-pie click-pie-nodelay click-scroll-list click-shades click-shape
    click-tab click-tab-2 click-tab-2-easy click-tab-2-hard click-tab-2-medium click-test click-test-2
    click-test-transfer click-widget copy-paste copy-paste-2 daily-calendar drag-box drag-circle drag-cube drag-items
    drag-items-grid drag-shapes drag-shapes-2 drag-single-shape drag-sort-numbers draw-circle draw-line
    email-inbox email-inbox-delete email-inbox-forward email-inbox-forward-nl email-inbox-forward-nl-turk
    email-inbox-important email-inbox-nl-turk email-inbox-noscroll email-inbox-reply email-inbox-star-reply
    enter-date enter-password enter-text enter-text-2 enter-text-dynamic enter-time find-greatest find-midpoint
    find-word flight.AA flight.Alaska flight.Alaska-auto focus-text focus-text-2 form-sequence form-sequence-2
    form-sequence-3 generate-number grid-coordinate guess-number highlight-text highlight-text-2 hot-cold
    identify-shape login-user login-user-popup multi-layouts multi-orderings navigate-tree number-checkboxes
    odd-or-even order-food phone-book read-table read-table-2 resize-textarea right-angle scroll-text scroll-text-2
    search-engine sign-agreement simple-algebra simple-arithmetic social-media social-media-all social-media-some
    stock-market terminal text-editor text-transform tic-tac-toe unicode-test use-autocomplete
    use-autocomplete-nodelay use-colorwheel use-colorwheel-2 use-slider use-slider-2 visual-addition
"""
ALLOWED_FAMILIES: tuple[str, ...] = tuple(_ALLOWED_TEXT.split())

_DRAG = (
    "needs a mouse drag (press, move, release); the action grammar has clicks, typing and key presses only"
)
_DRAWN = "needs a drawn mouse path; the action grammar has single clicks only"
_SELECTED = "needs text selected by a mouse drag; the action grammar has single clicks only"
_DRAGGED = """
    drag-box drag-circle drag-cube drag-items drag-items-grid drag-shapes drag-shapes-2 drag-single-shape
    drag-sort-numbers resize-textarea
"""
#: Allowed families the action grammar cannot solve, with the reason.
UNACTABLE: dict[str, str] = {
    **dict.fromkeys(_DRAGGED.split(), _DRAG),
    **dict.fromkeys(("draw-circle", "draw-line"), _DRAWN),
    **dict.fromkeys(("highlight-text", "highlight-text-2"), _SELECTED),
}


def actable_families() -> list[str]:
    """The allowed families the action grammar can act on, in list order."""
    return [f for f in ALLOWED_FAMILIES if f not in UNACTABLE]


def outside_allowed(env_ids: list[str]) -> list[str]:
    """The MiniWoB++ env ids in ``env_ids`` whose family is not allowed (other env kinds pass)."""
    return [e for e in env_ids if e.startswith("miniwob/") and task_name(e) not in ALLOWED_FAMILIES]
