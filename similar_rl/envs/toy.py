"""A small deterministic GUI environment (rendered with PIL) and its adapter, for tests, docs and smoke runs.

Env ids are ``"toy/<family>"``, one per task family of :mod:`similar_rl.envs.toy_tasks` (``click-button``,
``login-form``, ``open-tab``, ``checkboxes``; each family's docstring says what it asks).

Everything is decided by ``reset(seed=...)``: labels, targets, distractors and layout. Actions are strings of the
grammar in :mod:`similar_rl.envs.actions`; ``type`` replaces a field's value (at most 64 characters are kept),
``press`` and ``noop`` change nothing, ``click_xy`` clicks the visible element under the point. A malformed or
non-executable action never raises inside ``step``: the step is spent, nothing changes, the reward is 0 and
``info["action_error"]`` holds the message. Rewards: +1 on success (terminated), -1 on a definitely wrong terminal
click (terminated), else 0; the episode is truncated after ``max_steps`` steps.

Observation (a ``Dict`` space): ``utterance`` (the instruction), ``screenshot`` (210x160x3 uint8: a 50-pixel
instruction banner above a 160x160 page, like MiniWoB++), ``dom`` (JSON list of the visible elements' fields)
and ``fields`` (JSON object of the task fields). The same families are registered with Gymnasium as
``"similar_rl/toy-<family>-v0"`` once this module is imported.

Example:
    >>> from similar_rl.envs import make_env
    >>> env, adapter = make_env("toy/login-form")
    >>> state, _ = adapter.reset(env, seed=0)
    >>> state.instruction
    'Enter the username "mallory" and the password "sjkbc" and press Login.'
    >>> print(state.observation_text)
    [1] label "Username"
    [2] input_text "Username"
    [3] label "Password"
    [4] input_password "Password"
    [5] button "Login"
    [6] button "Cancel"
    >>> for action in ['type(ref=2, text="mallory")', 'type(ref=4, text="sjkbc")', "click(ref=5)"]:
    ...     outcome = adapter.step(env, action)
    >>> outcome.reward, outcome.terminated, outcome.success
    (1.0, True, True)
"""

from __future__ import annotations

import json
import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from similar_rl.envs.actions import MAX_ACTION_CHARS, Action, ActionParseError, format_action, parse_action
from similar_rl.envs.base import BaseAdapter, InvalidActionError
from similar_rl.envs.render import render_elements
from similar_rl.envs.toy_draw import HEIGHT, WIDTH, draw_page
from similar_rl.envs.toy_tasks import FAMILIES, MAX_VALUE_CHARS, Page
from similar_rl.types import Element, GUIState

PREFIX = "toy/"
CHARSET = string.printable
MAX_DOM_CHARS = 16384
DEFAULT_MAX_STEPS = 10


def check_action(page: Page | None, action: Action) -> None:
    """Raise :class:`InvalidActionError` if ``action`` cannot be executed on ``page``."""
    if page is None:
        raise InvalidActionError("the toy env has no page yet: call reset() before step()")
    if action.kind not in ("click", "type"):
        return
    widget = page.widget(action.ref)  # type: ignore[arg-type]
    if widget is None:
        refs = [w.ref for w in page.visible()]
        raise InvalidActionError(f"no element with ref {action.ref} on the page; visible refs are {refs}")
    if action.kind == "type" and not widget.typeable:
        raise InvalidActionError(
            f"element {action.ref} ({widget.tag} {widget.text!r}) is not a text field; "
            "type(...) needs an element marked typeable"
        )


class ToyEnv(gym.Env):
    """The toy GUI env for one task family (see the module docstring).

    Args:
        task: family name (``"click-button"``, ``"login-form"``, ``"open-tab"``, ``"checkboxes"``).
        max_steps: steps before truncation.
        render_mode: None or ``"rgb_array"`` (``render()`` returns the screenshot).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self, task: str = "click-button", max_steps: int = DEFAULT_MAX_STEPS, render_mode: str | None = None
    ):
        if task not in FAMILIES:
            raise ValueError(f"unknown toy task {task!r}; choose one of {sorted(FAMILIES)}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task = task
        self.family = FAMILIES[task]
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.observation_space = spaces.Dict(  # keys in sorted order, as a Dict space sorts a mapping's keys
            dom=spaces.Text(MAX_DOM_CHARS, charset=CHARSET),
            fields=spaces.Text(1024, charset=CHARSET),
            screenshot=spaces.Box(0, 255, (HEIGHT, WIDTH, 3), np.uint8),
            utterance=spaces.Text(512, charset=CHARSET),
        )
        self.action_space = spaces.Text(MAX_ACTION_CHARS, charset=CHARSET)
        self._page: Page | None = None
        self._steps = 0
        self._done = False
        self._solution: list[str] = []

    @property
    def page(self) -> Page | None:
        """The current page (mutable; for adapters and tests)."""
        return self._page

    @property
    def solution(self) -> list[str]:
        """Canonical action strings that solve the current episode from its start."""
        return list(self._solution)

    def elements(self) -> tuple[Element, ...]:
        """The visible elements of the current page."""
        return tuple(w.element() for w in self._page.visible()) if self._page else ()

    def _obs(self) -> dict[str, Any]:
        return {
            "utterance": self._page.instruction,
            "screenshot": draw_page(self._page),
            "dom": json.dumps([vars(el) for el in self.elements()], ensure_ascii=True, separators=(",", ":")),
            "fields": json.dumps(self._page.fields, ensure_ascii=True, sort_keys=True),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._page = self.family.generate(self.np_random)
        self._solution = self.family.solution(self._page)
        self._steps = 0
        self._done = False
        return self._obs(), {"task": self.task, "step": 0}

    def _apply(self, action: Action) -> tuple[float, bool]:
        page = self._page
        if action.kind == "click":
            widget = page.widget(action.ref)  # type: ignore[arg-type]
        elif action.kind == "click_xy":
            hits = [w for w in page.visible() if w.contains(action.x, action.y)]  # type: ignore[arg-type]
            widget = hits[-1] if hits else None
            if widget is None:
                page.focus(None)
        elif action.kind == "type":
            widget = page.widget(action.ref)  # type: ignore[arg-type]  # check_action found it
            page.focus(widget)
            widget.value = (action.text or "")[:MAX_VALUE_CHARS]
            return 0.0, False
        else:  # press, noop
            return 0.0, False
        if widget is None or not widget.clickable:
            return 0.0, False
        page.focus(widget)
        return self.family.on_click(page, widget)

    def step(self, action: str):
        if self._page is None:
            raise RuntimeError("call reset() before step()")
        info: dict[str, Any] = {"task": self.task}
        reward, terminated = 0.0, False
        if self._done:
            info["action_error"] = "the episode is over; call reset()"
        else:
            self._steps += 1
            try:
                parsed = parse_action(action)
                check_action(self._page, parsed)
                reward, terminated = self._apply(parsed)
            except (ActionParseError, InvalidActionError, TypeError) as exc:
                info["action_error"] = str(exc)
        truncated = not terminated and self._steps >= self.max_steps
        self._done = self._done or terminated or truncated
        info["step"] = self._steps
        info["success"] = bool(terminated and reward > 0)
        return self._obs(), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array" and self._page is not None:
            return draw_page(self._page)
        return None


class ToyAdapter(BaseAdapter):
    """Adapter of the toy env: ``similar_rl.envs.make_env("toy/login-form")`` returns ``(ToyEnv, ToyAdapter)``.

    Candidates: a click on every clickable element and, for every typeable element, a ``type`` of every task
    field value into it.
    """

    name = "toy"

    def make_env(self, env_id: str, **kwargs: Any) -> ToyEnv:
        """Create the env for ``"toy/<family>"`` (keyword arguments go to :class:`ToyEnv`)."""
        if not env_id.startswith(PREFIX):
            raise ValueError(f"toy env ids start with {PREFIX!r}, got {env_id!r}")
        return ToyEnv(task=env_id[len(PREFIX) :], **kwargs)

    def observe(self, obs: Any, info: dict[str, Any] | None = None) -> GUIState:
        elements = tuple(Element(**d) for d in json.loads(obs["dom"]))
        return GUIState(
            instruction=obs["utterance"],
            screenshot=np.asarray(obs["screenshot"], dtype=np.uint8),
            observation_text=render_elements(elements),
            elements=elements,
            fields=dict(json.loads(obs["fields"])),
        )

    def to_env_action(self, env: Any, action: str) -> str:
        """Validate ``action`` against the env's current page; return its canonical string.

        Raises:
            ActionParseError: the string is malformed.
            InvalidActionError: unknown ref, or ``type`` into an element that is not a text field.
        """
        parsed = parse_action(action)
        unwrapped = getattr(env, "unwrapped", env)
        if not isinstance(unwrapped, ToyEnv):
            raise TypeError(f"ToyAdapter needs a ToyEnv, got {type(unwrapped).__name__}")
        check_action(unwrapped.page, parsed)
        return format_action(parsed)

    def to_action_string(self, env_action: Any, env: Any = None, state: GUIState | None = None) -> str:
        return format_action(parse_action(env_action))

    def candidates(self, state: GUIState) -> list[str]:
        values = list(dict.fromkeys(state.fields.values()))
        out = [format_action(Action("click", ref=el.ref)) for el in state.elements if el.clickable]
        for el in state.elements:
            if el.typeable:
                out.extend(format_action(Action("type", ref=el.ref, text=v)) for v in values)
        return out


def _register_with_gymnasium() -> None:
    for family in FAMILIES:
        env_id = f"similar_rl/toy-{family}-v0"
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="similar_rl.envs.toy:ToyEnv", kwargs={"task": family})


_register_with_gymnasium()
