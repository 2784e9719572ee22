"""Task families of the toy GUI env: page generation from a seeded RNG and the effect of clicks.

A :class:`Page` holds mutable :class:`Widget` objects; the env (:mod:`similar_rl.envs.toy`) applies actions
to it and renders it. Each family generates a page with distractors and decides the reward of clicks:
+1 (task done), -1 (a definitely wrong terminal click) or 0 (nothing final happened).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from similar_rl.envs.actions import Action, format_action
from similar_rl.types import Element

PAGE_TOP = 50  # the instruction banner fills rows 0..49, like MiniWoB++
PAGE_SIZE = 160
MAX_VALUE_CHARS = 64  # inputs keep at most this many characters (like an HTML maxlength)

BUTTON_WORDS = (
    "Submit", "Cancel", "OK", "Next", "Back", "Save", "Delete", "Search", "Reset", "Help",
    "Yes", "No", "Apply", "Close", "Send", "Open", "Start", "Stop", "Continue", "Edit",
)  # fmt: skip
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar")  # fmt: skip
SUBMIT_WORDS = ("Login", "Sign in", "Submit", "Enter")
TAB_WORDS = ("Home", "Profile", "Settings", "Inbox", "Files", "News", "Account", "Photos")
ITEM_WORDS = ("apple", "pear", "plum", "kiwi", "lime", "fig", "mango", "grape", "melon", "peach", "cherry")


@dataclass
class Widget:
    """A mutable page element. ``panel`` is the tab panel it belongs to (None: always shown)."""

    ref: int
    tag: str
    text: str
    left: float
    top: float
    width: float
    height: float
    value: str = ""
    focused: bool = False
    clickable: bool = True
    typeable: bool = False
    panel: int | None = None
    role: str = ""

    def element(self) -> Element:
        shared = {k: v for k, v in vars(self).items() if k not in ("panel", "role")}  # Element's other fields
        return Element(**shared, classes=self.role, id=f"w{self.ref}")

    def contains(self, x: float, y: float) -> bool:
        return self.left <= x < self.left + self.width and self.top <= y < self.top + self.height


@dataclass
class Page:
    """One generated task instance and its mutable state."""

    family: str
    instruction: str
    fields: dict[str, str]
    widgets: list[Widget]
    answer: dict[str, object] = field(default_factory=dict)
    active_panel: int | None = None

    def visible(self) -> list[Widget]:
        return [w for w in self.widgets if w.panel is None or w.panel == self.active_panel]

    def widget(self, ref: int) -> Widget | None:
        return next((w for w in self.visible() if w.ref == ref), None)

    def focus(self, target: Widget | None) -> None:
        for w in self.widgets:
            w.focused = w is target

    def ref_of(self, role: str) -> int:
        """The ref of the first widget with ``role``."""
        return next(w.ref for w in self.widgets if w.role == role)


def _button_width(text: str) -> float:
    return float(6 * len(text) + 14)


@dataclass
class _Layout:
    """Hands out refs and stacks widgets top to bottom."""

    widgets: list[Widget] = field(default_factory=list)
    y: float = PAGE_TOP + 6

    def add(
        self, tag: str, text: str, width: float, height: float = 18, left: float = 8, **kw: object
    ) -> Widget:
        w = Widget(len(self.widgets) + 1, tag, text, left, self.y, width, height, **kw)  # type: ignore[arg-type]
        self.widgets.append(w)
        return w

    def newline(self, height: float = 22) -> None:
        self.y += height


def _end(success: bool) -> tuple[float, bool]:
    """Reward and terminated flag of a final click: +1 if it completes the task, else -1."""
    return (1.0 if success else -1.0), True


def _pick(rng: np.random.Generator, pool: tuple[str, ...], k: int) -> list[str]:
    return [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]


class ToyFamily:
    """Base class of task families: ``generate`` a page, decide the reward of a click."""

    name = ""

    def generate(self, rng: np.random.Generator) -> Page:
        raise NotImplementedError

    def on_click(self, page: Page, widget: Widget) -> tuple[float, bool]:
        """Reward and terminated flag of clicking ``widget`` (already focused by the env)."""
        return 0.0, False

    def solution(self, page: Page) -> list[str]:
        """The canonical action strings that solve ``page`` from its initial state."""
        raise NotImplementedError


class ClickButton(ToyFamily):
    """Click the button named in the instruction; any other button ends the episode with -1."""

    name = "click-button"

    def generate(self, rng: np.random.Generator) -> Page:
        labels = _pick(rng, BUTTON_WORDS, int(rng.integers(3, 6)))
        target = labels[int(rng.integers(len(labels)))]
        lay = _Layout()
        lay.add("div", "Choose an action:", 140, clickable=False)
        lay.newline()
        x = 8.0
        for label in labels:
            width = _button_width(label)
            if x + width > PAGE_SIZE - 4:
                lay.newline(26)
                x = 8.0
            lay.add("button", label, width, 20, left=x, role="target" if label == target else "distractor")
            x += width + 6
        return Page(self.name, f'Click on the "{target}" button.', {"target": target}, lay.widgets)

    def on_click(self, page: Page, widget: Widget) -> tuple[float, bool]:
        return _end(widget.role == "target") if widget.tag == "button" else (0.0, False)

    def solution(self, page: Page) -> list[str]:
        return [f"click(ref={page.ref_of('target')})"]


class LoginForm(ToyFamily):
    """Type a username and a password, then click the submit button (wrong fields: -1).

    Distractor buttons: "Cancel" ends the episode with -1, "Reset" clears the fields, "Help" does nothing.
    """

    name = "login-form"

    def generate(self, rng: np.random.Generator) -> Page:
        username = NAMES[int(rng.integers(len(NAMES)))]
        alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
        password = "".join(alphabet[i] for i in rng.integers(len(alphabet), size=int(rng.integers(4, 7))))
        submit = SUBMIT_WORDS[int(rng.integers(len(SUBMIT_WORDS)))]
        distractor = ("Cancel", "Reset", "Help")[int(rng.integers(3))]
        lay = _Layout()
        for tag, label in (("input_text", "Username"), ("input_password", "Password")):
            lay.add("label", label, 60, clickable=False)
            lay.newline(14)
            lay.add(tag, label, 120, typeable=True, role=label.lower())
            lay.newline(24)
        lay.newline(4)
        order = [(submit, "submit"), (distractor, distractor.lower())]
        if rng.random() < 0.5:
            order.reverse()
        x = 8.0
        for label, role in order:
            lay.add("button", label, _button_width(label), 20, left=x, role=role)
            x += _button_width(label) + 8
        instruction = f'Enter the username "{username}" and the password "{password}" and press {submit}.'
        return Page(self.name, instruction, {"username": username, "password": password}, lay.widgets)

    def on_click(self, page: Page, widget: Widget) -> tuple[float, bool]:
        if widget.role == "submit":  # the typeable widgets are the username and password fields
            return _end(all(w.value == page.fields[w.role] for w in page.widgets if w.typeable))
        if widget.role == "cancel":
            return -1.0, True
        if widget.role == "reset":
            for w in page.widgets:
                if w.typeable:
                    w.value = ""
        return 0.0, False

    def solution(self, page: Page) -> list[str]:
        fills = [Action("type", ref=w.ref, text=page.fields[w.role]) for w in page.widgets if w.typeable]
        return [*map(format_action, fills), f"click(ref={page.ref_of('submit')})"]


class OpenTab(ClickButton):
    """Open the named tab, then click the named button inside it.

    Only the active tab's panel is shown. Clicking any button other than the target in the target tab ends the
    episode with -1; in half the episodes the first (active) panel holds a same-named trap button.
    """

    name = "open-tab"

    def generate(self, rng: np.random.Generator) -> Page:
        tabs = _pick(rng, TAB_WORDS, 3)
        target_tab = int(rng.integers(1, 3))  # never the initially active tab 0
        lay = _Layout()
        x = 4.0
        for i, label in enumerate(tabs):
            width = float(5 * len(label) + 10)
            lay.add("tab", label, width, 18, left=x, role=f"tab{i}")
            x += width + 2
        lay.newline(28)
        labels = _pick(rng, BUTTON_WORDS, 9)
        target = labels[3 * target_tab]
        trap = rng.random() < 0.5
        top = lay.y
        for panel in range(3):
            lay.y = top
            panel_labels = labels[3 * panel : 3 * panel + 3]
            if panel == 0 and trap:
                panel_labels[1] = target
            for label in panel_labels:
                role = "target" if panel == target_tab and label == target else "distractor"
                lay.add("button", label, _button_width(label), 20, left=12, panel=panel, role=role)
                lay.newline(26)
        instruction = f'Open the "{tabs[target_tab]}" tab and click on "{target}".'
        fields = {"tab": tabs[target_tab], "target": target}
        return Page(self.name, instruction, fields, lay.widgets, {"tab": target_tab}, active_panel=0)

    def on_click(self, page: Page, widget: Widget) -> tuple[float, bool]:
        if widget.tag == "tab":
            page.active_panel = int(widget.role[3:])
            return 0.0, False
        return super().on_click(page, widget)

    def solution(self, page: Page) -> list[str]:
        tab = page.ref_of(f"tab{page.answer['tab']}")
        return [f"click(ref={tab})", f"click(ref={page.ref_of('target')})"]


class Checkboxes(ToyFamily):
    """Tick exactly the named checkboxes, then click Submit (any other set: -1).

    In 30% of the episodes one unnamed box starts ticked and must be unticked.
    """

    name = "checkboxes"

    def generate(self, rng: np.random.Generator) -> Page:
        items = _pick(rng, ITEM_WORDS, int(rng.integers(4, 6)))
        n_targets = int(rng.integers(1, 3))
        targets = sorted(rng.choice(len(items), size=n_targets, replace=False).tolist())
        prechecked = -1
        if rng.random() < 0.3:
            prechecked = int(rng.choice([i for i in range(len(items)) if i not in targets]))
        lay = _Layout()
        for i, item in enumerate(items):
            role = "target" if i in targets else "distractor"
            lay.add("input_checkbox", item, 90, 14, value="on" if i == prechecked else "", role=role)
            lay.newline(18)
        lay.newline(4)
        lay.add("button", "Submit", _button_width("Submit"), 20, role="submit")
        names = [items[i] for i in targets]
        quoted = " and ".join(f'"{n}"' for n in names)
        instruction = f"Select {quoted} and nothing else, then click Submit."
        fields = {f"item {k + 1}": n for k, n in enumerate(names)}
        return Page(self.name, instruction, fields, lay.widgets)

    def on_click(self, page: Page, widget: Widget) -> tuple[float, bool]:
        if widget.tag == "input_checkbox":
            widget.value = "" if widget.value else "on"
            return 0.0, False
        if widget.role == "submit":
            boxes = [w for w in page.widgets if w.tag == "input_checkbox"]
            return _end(all(bool(w.value) == (w.role == "target") for w in boxes))
        return 0.0, False

    def solution(self, page: Page) -> list[str]:
        clicks = [
            f"click(ref={w.ref})"
            for w in page.widgets
            if w.tag == "input_checkbox" and bool(w.value) != (w.role == "target")
        ]
        return [*clicks, f"click(ref={page.ref_of('submit')})"]


#: Task family name -> family; env ids are ``"toy/" + name``.
FAMILIES: dict[str, ToyFamily] = {f.name: f for f in (ClickButton(), LoginForm(), OpenTab(), Checkboxes())}
