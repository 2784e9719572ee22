"""Core types: :class:`StepInput` (what the reward model scores), :class:`GUIState` (what adapters observe),
and the protocols that connect environments, policies, judges and scorers.

Example:
    >>> step = StepInput(instruction="Click the OK button", action='click(ref=4)', history=["noop()"])
    >>> step.history
    ('noop()',)
    >>> StepInput(instruction="", action="noop()")
    Traceback (most recent call last):
    ...
    ValueError: StepInput.instruction must be a non-empty string
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

#: Scores of one step: the five dimensions and ``total`` (see :data:`similar_rl.dimensions.SCORE_KEYS`).
DimensionScores = dict[str, float]

MAX_IMAGE_SIDE = 4096
#: ``info`` keys that :class:`similar_rl.wrappers.SimilarRewardWrapper` adds to each step's info by default: the
#: step's Similar scores, and the env's own reward (the returned reward may be shaped).
INFO_SCORES = "similar"
INFO_ENV_REWARD = "similar_env_reward"


def as_rgb_array(image: Any, field_name: str = "screenshot") -> np.ndarray:
    """Validate a screenshot (PIL image or HxWx3/HxWx4/HxW uint8 array) and return it as HxWx3 uint8; a
    TypeError / ValueError names ``field_name`` and what is wrong.

    Example:
        >>> as_rgb_array(np.zeros((4, 5, 3), dtype=np.uint8)).shape
        (4, 5, 3)
        >>> as_rgb_array(np.zeros((4, 5), dtype=np.float32))
        Traceback (most recent call last):
        ...
        ValueError: screenshot must have dtype uint8, got float32 (convert with (x * 255).astype('uint8') if it is in [0, 1])
    """
    if hasattr(image, "mode") and hasattr(image, "size") and hasattr(image, "convert"):
        if image.mode not in ("RGB", "RGBA", "L", "P", "LA", "I;16", "I", "F", "1", "CMYK", "YCbCr"):
            raise ValueError(f"{field_name} has unsupported PIL mode {image.mode!r}")
        width, height = image.size
        if width == 0 or height == 0:
            raise ValueError(f"{field_name} is empty ({width}x{height})")
        if max(width, height) > MAX_IMAGE_SIDE:
            raise ValueError(
                f"{field_name} is {width}x{height}; the longest side may be at most {MAX_IMAGE_SIDE}"
            )
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{field_name} must be a PIL.Image.Image or a numpy uint8 array, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"{field_name} must have dtype uint8, got {image.dtype} "
            "(convert with (x * 255).astype('uint8') if it is in [0, 1])"
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"{field_name} must have shape (H, W), (H, W, 3) or (H, W, 4); got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{field_name} is empty (shape {image.shape})")
    if max(image.shape[:2]) > MAX_IMAGE_SIDE:
        raise ValueError(
            f"{field_name} has shape {image.shape}; the longest side may be at most {MAX_IMAGE_SIDE}"
        )
    return np.ascontiguousarray(image[:, :, :3])


def image_hash(image: Any) -> str:
    """Content hash of a screenshot's pixels (shape included); equal images get equal names."""
    array = as_rgb_array(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(array.shape).encode())
    h.update(array.tobytes())
    return h.hexdigest()


def _check_text(value: Any, name: str, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character")
    return value


@dataclass(frozen=True, eq=False)
class StepInput:
    """One step to score: the state (instruction, history, screenshot and/or observation text) and a candidate action.

    Args:
        instruction: the task instruction.
        action: the candidate action string (see :mod:`similar_rl.envs.actions`).
        history: previous action strings, oldest first.
        screenshot: PIL image or HxWx3 uint8 array (stored as an array).
        observation_text: a text rendering of the screen, e.g. the DOM with element refs.
    """

    instruction: str
    action: str
    history: Sequence[str] = ()
    screenshot: Image.Image | np.ndarray | None = None
    observation_text: str | None = None
    _key: str = field(default="", init=False, repr=False, compare=False)
    _prompt_key: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_text(self.instruction, "StepInput.instruction", allow_empty=False)
        _check_text(self.action, "StepInput.action", allow_empty=True)
        if isinstance(self.history, str) or not isinstance(self.history, Sequence):
            raise TypeError(
                f"StepInput.history must be a sequence of action strings, got {type(self.history).__name__}"
            )
        history = tuple(self.history)
        for i, item in enumerate(history):
            _check_text(item, f"StepInput.history[{i}]", allow_empty=True)
        object.__setattr__(self, "history", history)
        if self.screenshot is not None:
            object.__setattr__(self, "screenshot", as_rgb_array(self.screenshot, "StepInput.screenshot"))
        if self.observation_text is not None:
            _check_text(self.observation_text, "StepInput.observation_text", allow_empty=True)

    @property
    def prompt_key(self) -> str:
        """Content hash of the state side (everything but the action): equal for candidates of one state."""
        if not self._prompt_key:
            h = hashlib.blake2b(digest_size=16)
            # one JSON array (self-delimiting, with escapes): no two different states encode alike
            text = json.dumps(
                [self.instruction, self.observation_text, list(self.history)], ensure_ascii=True
            )
            h.update(text.encode("ascii"))
            if self.screenshot is None:
                h.update(b"|no-screenshot")
            else:
                h.update(f"|screenshot{self.screenshot.shape}|".encode())
                h.update(self.screenshot.tobytes())
            object.__setattr__(self, "_prompt_key", h.hexdigest())
        return self._prompt_key

    @property
    def key(self) -> str:
        """Content hash of the whole step (state and action): the cache key of a score."""
        if not self._key:
            h = hashlib.blake2b(digest_size=16)
            h.update(self.prompt_key.encode())  # fixed length: the action follows unambiguously
            h.update(self.action.encode("utf-8", "surrogatepass"))
            object.__setattr__(self, "_key", h.hexdigest())
        return self._key

    def with_action(self, action: str) -> StepInput:
        """The same state with another candidate action."""
        return StepInput(self.instruction, action, self.history, self.screenshot, self.observation_text)


@dataclass(frozen=True)
class Element:
    """One interactable or text element of a GUI state (a DOM node, an accessibility node...)."""

    ref: int
    tag: str
    text: str = ""
    value: str = ""
    left: float = 0.0
    top: float = 0.0
    width: float = 0.0
    height: float = 0.0
    focused: bool = False
    classes: str = ""
    id: str = ""
    clickable: bool = True
    typeable: bool = False

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.width / 2, self.top + self.height / 2)


@dataclass(frozen=True)
class GUIState:
    """What an adapter reads off one observation. Platform-neutral.

    Attributes:
        instruction: the task instruction.
        screenshot: HxWx3 uint8 array, or None.
        observation_text: compact text of the screen (e.g. the DOM with element refs) for language models.
        elements: the elements, for policies and rule judges.
        fields: task fields parsed from the instruction (e.g. ``{"username": "bob"}``), if known.
    """

    instruction: str
    screenshot: np.ndarray | None = None
    observation_text: str = ""
    elements: tuple[Element, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)

    def element(self, ref: int) -> Element | None:
        return next((el for el in self.elements if el.ref == ref), None)

    def step_input(self, action: str, history: Sequence[str] = ()) -> StepInput:
        """The :class:`StepInput` for scoring ``action`` in this state."""
        return StepInput(self.instruction, action, history, self.screenshot, self.observation_text)


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores steps: returns one dict per step with the five dimensions and ``total``."""

    def score(self, steps: Sequence[StepInput]) -> list[DimensionScores]: ...


@runtime_checkable
class Policy(Protocol):
    """Proposes candidate action strings for a state (MCTS-P children, best-of-N samples, agent actions)."""

    def propose(
        self, state: GUIState, history: Sequence[str], n: int, rng: np.random.Generator
    ) -> list[str]: ...


@dataclass(frozen=True)
class JudgeVerdict:
    """Task relevance and coherence of one candidate action, or a recorded failure (values None, ``error`` set)."""

    task_relevance: float | None
    coherence: float | None
    reason: str = ""
    error: str | None = None


@runtime_checkable
class Judge(Protocol):
    """Labels task relevance and coherence of candidate actions in one state."""

    def judge(
        self, state: GUIState, history: Sequence[str], actions: Sequence[str]
    ) -> list[JudgeVerdict]: ...
