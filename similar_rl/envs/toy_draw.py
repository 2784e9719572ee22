"""PIL rendering of a toy :class:`~similar_rl.envs.toy_tasks.Page` to an HxWx3 uint8 screenshot.

Text is the costly part, so each string's glyph mask and each instruction banner are rendered once and cached.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from similar_rl.envs.toy_tasks import PAGE_SIZE, PAGE_TOP, Page, Widget

HEIGHT = PAGE_TOP + PAGE_SIZE
WIDTH = PAGE_SIZE
BLACK = (0, 0, 0)
GREY_TEXT = (160, 160, 160)
FOCUS = (0, 90, 220)


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=10)


@functools.lru_cache(maxsize=4096)
def _text_mask(text: str) -> Image.Image:
    """Anti-aliased glyph mask ("L" image) of one line of text."""
    right, bottom = _font().getbbox(text)[2:]
    mask = Image.new("L", (max(1, int(right) + 1), max(1, int(bottom) + 1)), 0)
    ImageDraw.Draw(mask).text((0, 0), text, fill=255, font=_font())
    return mask


def _text(image: Image.Image, x: float, y: float, text: str, fill: tuple[int, int, int] = BLACK) -> None:
    text = " ".join(text.split())  # one line, no control characters
    if text:
        image.paste(fill, (round(x), round(y)), _text_mask(text))


def _wrap(text: str, width: float) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and _font().getlength(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines


@functools.lru_cache(maxsize=256)
def _banner(instruction: str) -> Image.Image:
    """The yellow instruction banner (rows 0..PAGE_TOP-1), at most four lines."""
    banner = Image.new("RGB", (WIDTH, PAGE_TOP), (255, 255, 0))
    for i, line in enumerate(_wrap(instruction, WIDTH - 6)[:4]):
        _text(banner, 3, 2 + 12 * i, line)
    return banner


def _draw_widget(image: Image.Image, draw: ImageDraw.ImageDraw, w: Widget, active_panel: int | None) -> None:
    x0, y0 = w.left, w.top
    x1, y1 = w.left + w.width - 1, w.top + w.height - 1
    if w.tag in ("button", "tab"):
        active = w.tag == "tab" and w.role == f"tab{active_panel}"
        fill = (255, 255, 255) if active else (224, 224, 224)
        draw.rectangle((x0, y0, x1, y1), fill=fill, outline=FOCUS if w.focused else (60, 60, 60))
        text_width = _text_mask(w.text).width - 1
        _text(image, x0 + (w.width - text_width) / 2, y0 + (w.height - 10) / 2 - 1, w.text)
    elif w.tag == "input_checkbox":
        draw.rectangle((x0, y0 + 2, x0 + 10, y0 + 12), fill=(255, 255, 255), outline=(60, 60, 60))
        if w.value:
            draw.line((x0 + 2, y0 + 4, x0 + 8, y0 + 10), fill=BLACK, width=2)
            draw.line((x0 + 2, y0 + 10, x0 + 8, y0 + 4), fill=BLACK, width=2)
        _text(image, x0 + 15, y0 + 1, w.text)
    elif w.tag.startswith("input_"):
        draw.rectangle(
            (x0, y0, x1, y1), fill=(255, 255, 255), outline=FOCUS if w.focused else (120, 120, 120)
        )
        shown = ("*" * len(w.value) if w.tag == "input_password" else w.value)[:24]
        _text(image, x0 + 3, y0 + 3, shown or w.text, BLACK if shown else GREY_TEXT)  # else the placeholder
    else:
        _text(image, x0, y0 + 2, w.text)


def draw_page(page: Page) -> np.ndarray:
    """Render the instruction banner (rows 0..49) and the visible widgets below it."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    image.paste(_banner(page.instruction), (0, 0))
    draw = ImageDraw.Draw(image)
    for w in page.visible():
        _draw_widget(image, draw, w, page.active_panel)
    return np.asarray(image, dtype=np.uint8)
