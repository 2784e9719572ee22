"""The JSON wire format of the reward server: requests of StepInputs, responses of dimension scores.

A ``POST /score`` body is one JSON object::

    {
      "images": ["<base64 PNG>", ...],          # optional: screenshots shared by several steps
      "steps": [
        {
          "instruction": "Log in as bob",         # required, non-empty string
          "action": "click(ref=4)",               # required string
          "history": ["type(ref=1, text=\\"bob\\")"],  # optional list of strings
          "observation_text": "...",              # optional string or null
          "screenshot": "<base64 PNG>",           # optional; at most ONE of these three:
          "screenshot_index": 0,                  #   an index into "images"
          "screenshot_path": "shots/a.png"        #   a PNG under the server's --allowed-root
        }
      ]
    }

The answer is ``{"scores": [{"helpfulness": ..., ..., "total": ...}, ...]}`` in request order. Validation is
strict: an unknown key, a wrong type, bad base64, a non-PNG image, an image over the size limit or a path outside
the allowed root is refused with a :class:`RequestError` whose ``status`` is the HTTP code (400, 403, 413) and
whose message names the field (``steps[2].history[0]``) and says what to send instead.

Example:
    >>> import json
    >>> from similar_rl import StepInput
    >>> body = json.dumps(encode_request([StepInput("Click OK", "click(ref=4)")])).encode()
    >>> parse_request(body)[0].action
    'click(ref=4)'
    >>> parse_request(b'{"steps": [{"action": "noop()"}]}')
    Traceback (most recent call last):
    ...
    similar_rl.serving.schema.RequestError: 400: steps[0].instruction is missing (a non-empty string)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from similar_rl.dimensions import SCORE_KEYS
from similar_rl.types import MAX_IMAGE_SIDE, DimensionScores, StepInput, as_rgb_array, image_hash

__all__ = [
    "MAX_STEPS_PER_REQUEST",
    "RequestError",
    "decode_png",
    "encode_png",
    "encode_request",
    "parse_request",
    "parse_scores",
]

#: Most steps one request may hold (more: 413; the client splits longer lists).
MAX_STEPS_PER_REQUEST = 1024
#: Longest accepted text field (characters).
MAX_TEXT_CHARS = 200_000
#: Longest accepted history (actions).
MAX_HISTORY = 256
#: Most decoded pixels of one request, over its distinct images (more: 413, checked from the PNG headers before
#: any pixel is decoded). 32 Mi pixels hold about 1000 distinct MiniWoB++ screenshots (160x210).
MAX_REQUEST_PIXELS = 2**25
#: Most pixels of one image (a 4096x4096 screenshot).
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE

_SCREENSHOT_KEYS = ("screenshot", "screenshot_index", "screenshot_path")  # at most one per step
STEP_KEYS = frozenset({"instruction", "action", "history", "observation_text", *_SCREENSHOT_KEYS})
REQUEST_KEYS = frozenset({"steps", "images"})


class RequestError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status code to answer with.

    Example:
        >>> str(RequestError(403, "screenshot_path is outside the allowed root"))
        '403: screenshot_path is outside the allowed root'
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def encode_png(image: Any) -> str:
    """Base64 text of ``image`` (PIL image or HxWx3 uint8 array) as a PNG.

    Example:
        >>> decode_png(encode_png(np.zeros((2, 3, 3), dtype=np.uint8)), "x").shape
        (2, 3, 3)
    """
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(as_rgb_array(image)).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_png(text: Any, field: str) -> np.ndarray:
    """Decode base64 PNG text into an HxWx3 uint8 array, refusing bad base64, other formats and huge images.

    The image size is checked from the PNG header before any pixel is decoded (no decompression bombs).
    """
    return _ImageBudget(MAX_IMAGE_PIXELS).inline(text, field)


class _ImageBudget:
    """Decodes the images of one request: each distinct image (same PNG bytes or resolved path) once, at most
    ``max_pixels`` in all, charged from the PNG header before the pixels are decoded."""

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self.used = 0
        self._decoded: dict[str, np.ndarray] = {}

    def inline(self, text: Any, field: str) -> np.ndarray:
        _expect(isinstance(text, str), text, f"{field} must be a base64 PNG string")
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise RequestError(
                400, f"{field} is not valid base64 (send base64.b64encode(png_bytes))"
            ) from None
        key = "png:" + hashlib.blake2b(raw, digest_size=16).hexdigest()
        if key not in self._decoded:
            self._decoded[key] = self._open(io.BytesIO(raw), field)
        return self._decoded[key]

    def path(self, real: Path, field: str) -> np.ndarray:
        key = f"path:{real}"
        if key not in self._decoded:
            try:
                with open(real, "rb") as fh:
                    self._decoded[key] = self._open(fh, field)
            except PermissionError:
                raise RequestError(403, f"{field} is not readable by the server") from None
        return self._decoded[key]

    def _open(self, source: Any, field: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(source, formats=["PNG"]) as img:
                width, height = img.size
                if width == 0 or height == 0 or max(width, height) > MAX_IMAGE_SIDE:
                    raise RequestError(
                        413 if max(width, height) > MAX_IMAGE_SIDE else 400,
                        f"{field} is {width}x{height}; each side must be 1..{MAX_IMAGE_SIDE} pixels",
                    )
                if self.used + width * height > self.max_pixels:
                    raise RequestError(
                        413,
                        f"{field} ({width}x{height}) takes the request past {self.max_pixels} decoded pixels "
                        f"({self.used} used by earlier images); send fewer or smaller screenshots per request",
                    )
                self.used += width * height
                return np.asarray(img.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, EOFError, SyntaxError, ValueError, zlib.error) as exc:
            if isinstance(exc, RequestError):
                raise
            raise RequestError(
                400, f"{field} is not a readable PNG image ({type(exc).__name__}: {exc})"
            ) from None
        except Image.DecompressionBombError:
            raise RequestError(413, f"{field} decodes to too many pixels") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (send numbers as finite decimals)")


_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}


def _expect(ok: bool, value: Any, problem: str) -> None:
    """Refuse (400) a value of the wrong type: ``problem`` says what was expected; the type given is added."""
    if not ok:
        raise RequestError(400, f"{problem}, got {_KINDS.get(type(value), type(value).__name__)}")


def _text(value: Any, field: str, *, required: bool, allow_empty: bool = True) -> str | None:
    if value is None and not required:
        return None
    _expect(isinstance(value, str), value, f"{field} must be a string")
    if not allow_empty and not value.strip():
        raise RequestError(400, f"{field} must be a non-empty string")
    if len(value) > MAX_TEXT_CHARS:
        raise RequestError(413, f"{field} has {len(value)} characters; at most {MAX_TEXT_CHARS} are accepted")
    _check_unicode(value, field)
    return value


def _check_unicode(value: str, field: str) -> None:
    if "\x00" in value:
        raise RequestError(400, f"{field} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(
            400,
            f"{field} holds a lone surrogate ({value[exc.start]!r} at {exc.start}); send valid Unicode text",
        ) from None


def _resolve_path(value: Any, field: str, allowed_root: Path | None, images: _ImageBudget) -> np.ndarray:
    _expect(isinstance(value, str) and value != "", value, f"{field} must be a non-empty path string")
    if allowed_root is None:
        raise RequestError(
            403,
            f"{field}: this server accepts no file paths (start it with --allowed-root DIR to allow them)",
        )
    _check_unicode(value, field)
    root = allowed_root.resolve()
    # an absolute value replaces the root; realpath follows symlinks, so a link out of the root is refused too
    real = Path(os.path.realpath(root / value))
    if not real.is_relative_to(root):
        raise RequestError(403, f"{field} is outside the server's allowed root")
    if not real.is_file():
        raise RequestError(400, f"{field} names no file under the allowed root: {value!r}")
    return images.path(real, field)


def _step(item: Any, i: int, images: list[Any], budget: _ImageBudget, allowed_root: Path | None) -> StepInput:
    where = f"steps[{i}]"
    _expect(isinstance(item, dict), item, f"{where} must be an object with instruction and action")
    unknown = sorted(set(item) - STEP_KEYS)
    if unknown:
        raise RequestError(400, f"{where} has unknown key(s) {unknown}; allowed keys: {sorted(STEP_KEYS)}")
    for name, kind in (("instruction", "a non-empty string"), ("action", "a string")):
        if name not in item:
            raise RequestError(400, f"{where}.{name} is missing ({kind})")
    instruction = _text(item["instruction"], f"{where}.instruction", required=True, allow_empty=False)
    action = _text(item["action"], f"{where}.action", required=True)
    history_value = [] if item.get("history") is None else item["history"]
    _expect(
        isinstance(history_value, list), history_value, f"{where}.history must be a list of action strings"
    )
    if len(history_value) > MAX_HISTORY:
        raise RequestError(413, f"{where}.history has {len(history_value)} actions; at most {MAX_HISTORY}")
    history = [_text(h, f"{where}.history[{j}]", required=True) for j, h in enumerate(history_value)]
    observation_text = _text(item.get("observation_text"), f"{where}.observation_text", required=False)
    given = [k for k in _SCREENSHOT_KEYS if item.get(k) is not None]
    if len(given) > 1:
        raise RequestError(400, f"{where} gives {given}; send at most one of them")
    screenshot = None
    if given == ["screenshot"]:
        screenshot = budget.inline(item["screenshot"], f"{where}.screenshot")
    elif given == ["screenshot_index"]:
        index = item["screenshot_index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(images):
            raise RequestError(
                400,
                f"{where}.screenshot_index must be an integer in [0, {len(images)}) (an index into images)",
            )
        screenshot = budget.inline(images[index], f"images[{index}]")
    elif given == ["screenshot_path"]:
        screenshot = _resolve_path(item["screenshot_path"], f"{where}.screenshot_path", allowed_root, budget)
    try:
        return StepInput(instruction, action, history, screenshot, observation_text)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise RequestError(400, f"{where}: {exc}") from None


def parse_request(
    body: bytes | str | Mapping[str, Any],
    allowed_root: str | os.PathLike[str] | None = None,
    max_steps: int = MAX_STEPS_PER_REQUEST,
    max_pixels: int = MAX_REQUEST_PIXELS,
) -> list[StepInput]:
    """Validate a ``/score`` request body and return its StepInputs.

    Args:
        body: the raw JSON body (bytes or text) or an already parsed object.
        allowed_root: the folder ``screenshot_path`` values must lie under; None refuses every path (403).
        max_steps: most steps accepted (more: 413).
        max_pixels: most decoded pixels over the request's distinct images (more: 413).

    Raises:
        RequestError: with status 400 (malformed), 403 (path outside the root) or 413 (too large).
    """
    if isinstance(body, bytes | bytearray | str):
        try:
            data = json.loads(body, parse_constant=_refuse_constant)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers past the digit limit
            raise RequestError(400, f"the body is not valid UTF-8 JSON ({str(exc)[:200]})") from None
        except RecursionError:
            raise RequestError(400, "the body is nested too deeply") from None
    else:
        data = body
    _expect(isinstance(data, dict), data, "the body must be a JSON object with a 'steps' list")
    unknown = sorted(set(data) - REQUEST_KEYS)
    if unknown:
        raise RequestError(
            400, f"the body has unknown key(s) {unknown}; allowed keys: {sorted(REQUEST_KEYS)}"
        )
    if "steps" not in data:
        raise RequestError(400, "steps is missing (a list of step objects)")
    steps = data["steps"]
    _expect(isinstance(steps, list), steps, "steps must be a list of step objects")
    if len(steps) > max_steps:
        raise RequestError(413, f"steps has {len(steps)} items; at most {max_steps} per request (split it)")
    images = data.get("images") or []
    _expect(isinstance(images, list), images, "images must be a list of base64 PNG strings")
    root = Path(allowed_root) if allowed_root is not None else None
    budget = _ImageBudget(max_pixels)
    return [_step(item, i, images, budget, root) for i, item in enumerate(steps)]


def encode_request(steps: Sequence[StepInput]) -> dict[str, Any]:
    """The request object for ``steps``; a screenshot shared by several steps is sent once (``images``)."""
    images: list[str] = []
    index_of: dict[str, int] = {}
    out = []
    for step in steps:
        item: dict[str, Any] = {"instruction": step.instruction, "action": step.action}
        if step.history:
            item["history"] = list(step.history)
        if step.observation_text is not None:
            item["observation_text"] = step.observation_text
        if step.screenshot is not None:
            digest = image_hash(step.screenshot)
            if digest not in index_of:
                index_of[digest] = len(images)
                images.append(encode_png(step.screenshot))
            item["screenshot_index"] = index_of[digest]
        out.append(item)
    return {"steps": out, "images": images} if images else {"steps": out}


def parse_scores(data: Any, expected: int) -> list[DimensionScores]:
    """Validate a ``/score`` response object and return its score dicts.

    Raises:
        ValueError: the response is not ``{"scores": [...]}`` with ``expected`` dicts of finite numbers.
    """
    scores = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(scores, list) or len(scores) != expected:
        raise ValueError(f"the server answered without {expected} scores: {str(data)[:200]!r}")
    out = []
    for i, row in enumerate(scores):
        if not isinstance(row, dict) or any(k not in row for k in SCORE_KEYS):
            raise ValueError(f"scores[{i}] must hold the keys {SCORE_KEYS}, got {str(row)[:200]!r}")
        values = {k: float(row[k]) for k in SCORE_KEYS}
        if not all(math.isfinite(v) for v in values.values()):
            raise ValueError(f"scores[{i}] holds non-finite values: {values}")
        out.append(values)
    return out
