"""MiniWoB++ adapter: Farama ``miniwob`` tasks in Debian's headless Chromium, fully offline.

Env ids are miniwob's own (``"miniwob/click-button-v1"``). :meth:`MiniWoBAdapter.make_env` starts the browser
with the settings of :mod:`similar_rl.envs.miniwob_browser` (no downloads, no network chatter) and an action
space with the kinds of the action grammar (:mod:`similar_rl.envs.actions`)::

    click(ref=N)           -> CLICK_ELEMENT (N is a DOM ref shown in the observation text)
    click_xy(x=X, y=Y)     -> CLICK_COORDS (pixels of the 160x210 task screen)
    type(ref=N, text="s")  -> FOCUS_ELEMENT_AND_TYPE_TEXT
    press(key="Enter")     -> PRESS_KEY (one of miniwob's allowed keys; "Control+a" style combinations)
    noop()                 -> NONE

The observation text lists the visible elements one per line (see :mod:`similar_rl.envs.render`); wrappers
without text of their own are skipped, text nodes are folded into their parent, checkboxes and radios take
their label's text, and ``<select>`` elements list their options.

Example (pure: no browser needed to convert keys):
    >>> miniwob_key("Control+a"), grammar_key("<Enter>")
    ('C-a', 'Enter')
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from similar_rl._optional import require
from similar_rl.envs.actions import NOOP, Action, format_action, parse_action
from similar_rl.envs.base import BaseAdapter, EnvFailure, InvalidActionError, StepOutcome
from similar_rl.envs.render import render_element
from similar_rl.types import Element, GUIState

#: The miniwob action types of the env's action space, in order (their index is the ``action_type`` value).
ACTION_TYPES: tuple[str, ...] = (
    "NONE",
    "CLICK_COORDS",
    "CLICK_ELEMENT",
    "PRESS_KEY",
    "TYPE_TEXT",
    "FOCUS_ELEMENT_AND_TYPE_TEXT",
)
_TEXT_INPUTS = ("text", "password", "email", "number", "search", "tel", "url", "date", "time")
TYPEABLE_TAGS = frozenset({*(f"input_{kind}" for kind in _TEXT_INPUTS), "textarea", "select"})
#: Longest text one ``type`` action may carry (miniwob's ``text_max_len``).
TYPE_MAX_CHARS = 64
#: Milliseconds to wait after each action before observing, for tasks whose page changes asynchronously
#: (jQuery UI autocomplete opens its menu 300 ms after the last keystroke). Without it the observation after
#: an action depends on timing and replay is not deterministic.
SETTLE_MS: dict[str, float] = {"use-autocomplete": 500.0}
INTERACTIVE_TAGS = frozenset({"a", "button", "label", "select", "textarea", "option", "svg"})
_MODIFIERS = {"control": "C-", "ctrl": "C-", "shift": "S-", "alt": "A-", "meta": "M-", "cmd": "M-"}
_MODIFIER_NAMES = {"C-": "Control", "S-": "Shift", "A-": "Alt", "M-": "Meta"}


def miniwob_key(key: str) -> str:
    """Grammar key (``"Enter"``, ``"a"``, ``"Control+a"``) -> miniwob key (``"<Enter>"``, ``"a"``, ``"C-a"``)."""
    if len(key) > 1 and "+" in key:
        *mods, base = key.split("+")
        prefix = ""
        for mod in mods:
            if mod.strip().lower() not in _MODIFIERS:
                raise InvalidActionError(
                    f"unknown modifier {mod!r} in key {key!r}; use Control, Shift, Alt or Meta"
                )
            prefix += _MODIFIERS[mod.strip().lower()]
        return prefix + miniwob_key(base)
    if len(key) == 1 or (key.startswith("<") and key.endswith(">")):
        return key
    return f"<{key}>"


def grammar_key(key: str) -> str:
    """miniwob key -> grammar key (inverse of :func:`miniwob_key`)."""
    mods = []
    while key[:2] in _MODIFIER_NAMES and len(key) > 2:
        mods.append(_MODIFIER_NAMES[key[:2]])
        key = key[2:]
    if key.startswith("<") and key.endswith(">") and len(key) > 2:
        key = key[1:-1]
    return "+".join([*mods, key])


def task_name(env_id: str) -> str:
    """``"miniwob/click-button-v1"`` -> ``"click-button"``.

    Example:
        >>> task_name("miniwob/click-button-v1")
        'click-button'
    """
    name = env_id.split("/", 1)[-1]
    base, sep, version = name.rpartition("-v")
    return base if sep and version.isdigit() else name


def env_id_for(family: str) -> str:
    """``"click-button"`` -> ``"miniwob/click-button-v1"``; full ids (with a ``/``) pass through.

    Example:
        >>> env_id_for("click-button"), env_id_for("toy/login-form")
        ('miniwob/click-button-v1', 'toy/login-form')
    """
    return family if "/" in family else f"miniwob/{family}-v1"


def _scalar(value: Any) -> float:
    return float(np.asarray(value).reshape(-1)[0])


@dataclasses.dataclass(eq=False, repr=False)  # compared and shown like any other adapter
class MiniWoBAdapter(BaseAdapter):
    """Adapter for Farama MiniWoB++ (``miniwob/<task>-v1``).

    Args:
        chrome_binary, chromedriver: browser executables (default: ``$MINIWOB_*`` or Debian's ``/usr/bin`` ones).
        extra_chrome_args: Chromium flags (default :data:`~similar_rl.envs.miniwob_browser.OFFLINE_CHROME_FLAGS`).
        max_elements: most elements listed in the observation text (the rest is summarised in one line).
        max_text_chars: longest quoted text per element in the observation text.
        max_clicks: most click candidates per state.
        max_type_candidates: most ``type`` candidates per state (split over its typeable elements).
        page_values: also offer typing texts read off the page (see :meth:`type_values`), not only task fields.
    """

    name = "miniwob"

    chrome_binary: str | None = None
    chromedriver: str | None = None
    extra_chrome_args: Sequence[str] | None = None
    max_elements: int = 60
    max_text_chars: int = 80
    max_clicks: int = 40
    max_type_candidates: int = 24
    page_values: bool = True

    def __post_init__(self) -> None:
        if self.extra_chrome_args is not None:
            self.extra_chrome_args = tuple(self.extra_chrome_args)

    def make_env(self, env_id: str, **kwargs: Any) -> Any:
        """``gymnasium.make(env_id)`` with the offline browser and the grammar's action space.

        Keyword arguments go to the miniwob env (``wait_ms``, ``data_mode``...), except the adapter's browser
        settings, and ``hide_caret`` and ``type_replaces`` of
        :class:`~similar_rl.envs.miniwob_browser.BrowserConfig`.

        Raises:
            EnvFailure: chromium/chromedriver missing or failing to start (the message says how to install them).
        """
        gym = require("gymnasium", "MiniWoB++ environments")
        require("miniwob", "MiniWoB++ environments")
        require("selenium", "MiniWoB++ environments")
        from miniwob.action import ActionSpaceConfig, ActionTypes

        from similar_rl.envs.miniwob_browser import BrowserConfig, offline_env_class, set_default_browser_env

        set_default_browser_env()
        browser_kw = {
            name: bool(kwargs.pop(name)) for name in ("hide_caret", "type_replaces") if name in kwargs
        }
        for name in ("chrome_binary", "chromedriver"):
            browser_kw[name] = kwargs.pop(name, None) or getattr(self, name) or ""
        extra = kwargs.pop("extra_chrome_args", None) or self.extra_chrome_args
        if extra is not None:
            browser_kw["extra_args"] = tuple(extra)
        browser = BrowserConfig(**browser_kw)
        try:
            spec = gym.spec(env_id)
        except gym.error.Error as exc:
            raise ValueError(
                f"unknown MiniWoB++ env id {env_id!r} (expected e.g. 'miniwob/click-button-v1'): {exc}"
            ) from None
        kwargs.setdefault("render_mode", None)
        kwargs.setdefault("wait_ms", SETTLE_MS.get(task_name(env_id), 0.0))
        kwargs.setdefault(
            "action_space_config", ActionSpaceConfig(action_types=[ActionTypes[t] for t in ACTION_TYPES])
        )
        env_class = spec.entry_point
        if isinstance(env_class, str):
            env_class = gym.envs.registration.load_env_creator(env_class)
        offline_spec = dataclasses.replace(spec, entry_point=offline_env_class(env_class))
        return gym.make(offline_spec, browser=browser, **kwargs)

    def reset(self, env: Any, seed: int | None = None) -> tuple[GUIState, dict[str, Any]]:
        """Reset with ``seed``; a browser failure becomes :class:`EnvFailure` (the next reset restarts it)."""
        with _browser_failure(env, f"during reset(seed={seed})"):
            return super().reset(env, seed)

    def step(self, env: Any, action: str) -> StepOutcome:
        """Execute one action string; a browser failure becomes :class:`EnvFailure`."""
        with _browser_failure(env, f"while executing {action!r}"):
            return super().step(env, action)

    def observe(self, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> GUIState:
        """Read instruction, screenshot, elements, observation text and task fields off a miniwob observation."""
        info = info or {}
        elements = self.elements(obs.get("dom_elements", ()), info.get("select_options", {}))
        fields: dict[str, str] = {}
        for key, value in obs.get("fields", ()):
            fields.setdefault(str(key), str(value))
        screenshot = obs.get("screenshot")
        return GUIState(
            instruction=str(obs.get("utterance", "")) or "(no instruction)",
            screenshot=None if screenshot is None else np.asarray(screenshot, dtype=np.uint8),
            observation_text=self.render(elements),
            elements=tuple(elements),
            fields=fields,
        )

    def elements(
        self,
        dom: Sequence[Mapping[str, Any]],
        select_options: Mapping[int, tuple[Sequence[str], int]] | None = None,
    ) -> list[Element]:
        """The visible, meaningful elements of a miniwob ``dom_elements`` list, in document order."""
        select_options = select_options or {}
        texts: dict[int, list[str]] = defaultdict(list)  # text nodes folded into their parent
        children: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
        for raw in dom:
            if int(raw["ref"]) >= 0:
                children[int(raw["parent"])].append(raw)
            elif raw["text"].strip():
                texts[int(raw["parent"])].append(raw["text"].strip())
        # Checkboxes/radios take the text of the label wrapping them; such labels are then skipped.
        label_text: dict[int, str] = {}
        skip: set[int] = set()
        for raw in dom:
            ref = int(raw["ref"])
            if raw["tag"] != "label" or ref < 0:
                continue
            own = " ".join([raw["text"].strip(), *texts.get(ref, [])]).strip()
            boxes = [c for c in children.get(ref, []) if c["tag"] in ("input_checkbox", "input_radio")]
            if len(boxes) == 1 and own:
                label_text[int(boxes[0]["ref"])] = own
                skip.add(ref)
        out = []
        for raw in dom:
            ref = int(raw["ref"])
            if ref <= 0 or ref in skip:
                continue
            tag = str(raw["tag"])
            left, top = _scalar(raw["left"]), _scalar(raw["top"])
            width, height = _scalar(raw["width"]), _scalar(raw["height"])
            if width <= 1 or height <= 1 or left <= -width or top <= -height or left >= 160 or top >= 210:
                continue  # too small or off the 160x210 task screen
            text = " ".join([raw["text"].strip(), *texts.get(ref, [])]).strip() or label_text.get(ref, "")
            interactive = tag in INTERACTIVE_TAGS or tag.startswith("input_")
            if not (interactive or text):
                continue
            value = str(raw["value"])
            if tag in ("input_checkbox", "input_radio"):
                value = "checked" if value.lower() == "true" else "unchecked"
            if ref in select_options:
                options, index = select_options[ref]
                text = "options: " + " | ".join(options)
                value = options[index] if 0 <= index < len(options) else ""
            out.append(
                Element(
                    ref=ref,
                    tag=tag,
                    text=text,
                    value=value,
                    left=left,
                    top=top,
                    width=width,
                    height=height,
                    focused=bool(int(raw["flags"][0])),
                    classes=str(raw["classes"]),
                    id=str(raw["id"]),
                    clickable=bool(int(raw["flags"][3])) or interactive,  # a leaf, or interactive
                    typeable=tag in TYPEABLE_TAGS,
                )
            )
        return out

    def render(self, elements: Sequence[Element]) -> str:
        """The observation text: one line per element, at most ``max_elements`` lines."""
        lines = [
            render_element(el, self.max_text_chars * (3 if el.tag == "select" else 1))
            for el in elements[: self.max_elements]
        ]
        if len(elements) > self.max_elements:
            lines.append(f"... ({len(elements) - self.max_elements} more elements not shown)")
        return "\n".join(lines)

    def to_env_action(self, env: Any, action: str) -> dict[str, Any]:
        """Parse ``action`` and build the miniwob action dict for ``env``.

        Raises:
            ActionParseError: malformed string.
            InvalidActionError: unknown ref, key not allowed, coordinates off screen, text too long, or a kind
                the env's action space does not have.
        """
        parsed = parse_action(action)
        raw_env = env.unwrapped
        config = raw_env.action_space_config
        kind_to_type = {
            "noop": "NONE",
            "click": "CLICK_ELEMENT",
            "click_xy": "CLICK_COORDS",
            "type": "FOCUS_ELEMENT_AND_TYPE_TEXT",
            "press": "PRESS_KEY",
        }
        wanted = kind_to_type[parsed.kind]
        names = [getattr(t, "value", t) for t in config.action_types]
        if wanted not in names:
            raise InvalidActionError(
                f"{parsed.kind}(...) needs miniwob action type {wanted}, which this env's action space lacks "
                f"(it has {names}); make the env with MiniWoBAdapter.make_env"
            )
        fields: dict[str, Any] = {}
        if parsed.ref is not None:
            self._check_ref(raw_env, parsed.ref)
            fields["ref"] = parsed.ref
        if parsed.kind == "click_xy":
            width, height = config.screen_width, config.screen_height
            if not (0 <= parsed.x <= width and 0 <= parsed.y <= height):
                raise InvalidActionError(
                    f"click_xy(x={parsed.x:g}, y={parsed.y:g}) is off the {width:g}x{height:g} task screen"
                )
            fields["coords"] = np.array([parsed.x, parsed.y], dtype=np.float32)
        if parsed.kind == "type":
            if len(parsed.text) > config.text_max_len:
                raise InvalidActionError(
                    f"type(...) text is {len(parsed.text)} characters; MiniWoB types at most {config.text_max_len}"
                )
            fields["text"] = parsed.text
        if parsed.kind == "press":
            key = miniwob_key(parsed.key)
            allowed = list(config.allowed_keys)
            if key not in allowed:
                examples = ", ".join(grammar_key(k) for k in allowed[:12])
                raise InvalidActionError(
                    f"key {parsed.key!r} is not allowed in MiniWoB++; allowed keys include {examples}, "
                    "letters, digits and Control+a/c/x/v"
                )
            fields["key"] = allowed.index(key)
        return raw_env.create_action(names.index(wanted), **fields)

    @staticmethod
    def _check_ref(raw_env: Any, ref: int) -> None:
        driver = getattr(getattr(raw_env, "instance", None), "driver", None)
        if driver is None:
            return
        refs = sorted(
            int(r) for r in driver.execute_script("return Object.keys(core.previousDOMInfo);") or []
        )
        if ref not in refs:
            shown = ", ".join(map(str, refs[-12:])) or "none"
            raise InvalidActionError(
                f"ref {ref} is not an element of the current page; valid refs include {shown} "
                "(see the [ref] numbers in the observation text)"
            )

    def to_action_string(
        self, env_action: Mapping[str, Any], env: Any = None, state: GUIState | None = None
    ) -> str:
        """The action string of a raw miniwob action dict, from any miniwob action space.

        ``action_type`` is a type name or an index into ``env``'s action types (default :data:`ACTION_TYPES`).
        ``TYPE_TEXT`` types into the element focused in ``state``; ``*_FIELD`` kinds type a task field of
        ``state``. Kinds the grammar lacks (scrolls, drags, a field without ``state``...) get a call of their
        own name, such as ``scroll_down_xy(x=80, y=100)``: not executable, but scored by the model as text.

        Example:
            >>> MiniWoBAdapter().to_action_string({"action_type": 2, "ref": 7})
            'click(ref=7)'
            >>> MiniWoBAdapter().to_action_string({"action_type": "PRESS_KEY", "key": 0})
            'press(key="Enter")'
            >>> MiniWoBAdapter().to_action_string({"action_type": "SCROLL_DOWN_COORDS", "coords": [80, 100]})
            'scroll_down_xy(x=80, y=100)'
        """
        config = getattr(getattr(env, "unwrapped", env), "action_space_config", None)
        name = env_action["action_type"]
        if not isinstance(name, str):
            types = tuple(config.action_types) if config is not None else ACTION_TYPES
            index = int(np.asarray(name).item())
            if not 0 <= index < len(types):
                raise ValueError(
                    f"action_type {index} is not an index into this env's {len(types)} action types"
                )
            name = getattr(types[index], "value", types[index])
        if name == "NONE":
            return NOOP
        if name.endswith("_COORDS"):
            x, y = (round(float(v), 2) for v in np.asarray(env_action["coords"]).reshape(-1)[:2])
            if name == "CLICK_COORDS":
                return format_action(Action("click_xy", x=x, y=y))
            call = name.removesuffix("_COORDS").lower()
            return f"{call}_xy(x={x:g}, y={y:g})"
        if name == "CLICK_ELEMENT":
            return format_action(Action("click", ref=int(env_action["ref"])))
        if name == "PRESS_KEY":
            from miniwob.constants import DEFAULT_ALLOWED_KEYS

            keys = tuple(config.allowed_keys) if config is not None else DEFAULT_ALLOWED_KEYS
            return format_action(Action("press", key=grammar_key(keys[int(env_action["key"])])))
        if name in ("TYPE_TEXT", "TYPE_FIELD", "FOCUS_ELEMENT_AND_TYPE_TEXT", "FOCUS_ELEMENT_AND_TYPE_FIELD"):
            if name.endswith("FIELD"):
                values = list(state.fields.values()) if state is not None else []
                index = int(np.asarray(env_action["field"]).item())
                if not 0 <= index < len(values):
                    return f"type_field(field={index})"
                text = values[index]
            else:
                text = str(env_action["text"])
            if name.startswith("FOCUS_ELEMENT"):
                ref = int(env_action["ref"])
            else:
                focused = [el.ref for el in state.elements if el.focused] if state is not None else []
                if not focused:
                    return f"type_focused(text={json.dumps(text)})"
                ref = focused[0]
            return format_action(Action("type", ref=ref, text=text))
        raise ValueError(f"miniwob action type {name!r} is unknown to this adapter")

    def candidates(self, state: GUIState) -> list[str]:
        """Click each clickable element; type into each typeable one the values of :meth:`type_values`; Enter if
        a typeable element is focused."""
        clicks = [el for el in state.elements if el.clickable][: self.max_clicks]
        out = [format_action(Action("click", ref=el.ref)) for el in clicks]
        values = self.type_values(state)
        typeable = [el for el in state.elements if el.typeable]
        for el in typeable:
            per_element = values[: max(1, self.max_type_candidates // len(typeable))]
            out += [format_action(Action("type", ref=el.ref, text=v)) for v in per_element if v != el.value]
        if any(el.focused and el.typeable for el in state.elements):
            out.append('press(key="Enter")')
            if self.page_values and any(len(el.value) > TYPE_MAX_CHARS for el in typeable):
                # a value too long to retype: select, copy and paste it with the keyboard
                out += ['press(key="Control+a")', 'press(key="Control+c")', 'press(key="Control+v")']
        return list(dict.fromkeys(out)) or ["noop()"]

    def type_values(self, state: GUIState) -> list[str]:
        """Texts worth typing, most likely first: the task fields' values, their lower/upper-case forms, and, with
        ``page_values``, what the page shows (short element texts, the words of short sentences, the value held
        by another field, the result of an arithmetic expression such as ``3 + 4 =``), at most 64 characters each.

        Example:
            >>> from similar_rl.types import Element
            >>> page = [Element(ref=4, tag="div", text="3 + 4 ="), Element(ref=5, tag="input_text", text="")]
            >>> MiniWoBAdapter().type_values(GUIState("Solve it", elements=tuple(page), fields={"x": "Ab"}))
            ['Ab', 'ab', 'AB', '3 + 4 =', '7', '3', '4']
        """
        values = [form for v in state.fields.values() if v for form in (v, v.lower(), v.upper())]
        if self.page_values:
            for el in state.elements:
                if el.typeable:
                    if el.value and el.tag != "select":
                        values.append(el.value)  # copy one field into another
                    continue
                text = el.text.strip()
                if not text or el.tag in ("button", "select") or text.startswith("options: "):
                    continue
                values.append(text)
                result = _arithmetic(text)
                if result is not None:
                    values.append(result)
                words = _WORDS.findall(text)
                if 1 < len(words) <= 16:
                    values += words
        return [v for v in dict.fromkeys(values) if 0 < len(v) <= TYPE_MAX_CHARS]


_WORDS = re.compile(r"[\w'-]+")
_ARITHMETIC = re.compile(r"^\s*(-?\d+)\s*([-+*x/])\s*(-?\d+)\s*=?\s*\??\s*$")


def _arithmetic(text: str) -> str | None:
    """The result of ``"3 + 4 ="`` style text (integers; division only when exact), else None."""
    match = _ARITHMETIC.match(text)
    if match is None:
        return None
    a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
    if op == "/":
        return str(a // b) if b and a % b == 0 else None
    return str(a + b if op == "+" else a - b if op == "-" else a * b)


@contextlib.contextmanager
def _browser_failure(env: Any, doing: str) -> Iterator[None]:
    """Turn a WebDriverException into :class:`EnvFailure`; the browser is marked dead (reset restarts it)."""
    from selenium.common.exceptions import WebDriverException

    try:
        yield
    except WebDriverException as exc:
        instance = getattr(getattr(env, "unwrapped", env), "instance", None)
        if instance is not None:
            instance.died = True
        raise EnvFailure(f"MiniWoB++ browser failed {doing}: {exc}") from exc
