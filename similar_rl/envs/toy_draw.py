"""PIL rendering of a toy :class:`~similar_rl.envs.toy_tasks.Page` to an HxWx3 uint8 screenshot."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from similar_rl.envs.toy_tasks import PAGE_SIZE, PAGE_TOP, Page, Widget

HEIGHT = PAGE_TOP + PAGE_SIZE
WIDTH = PAGE_SIZE


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=10)


def _wrap(text: str, width: float, draw: ImageDraw.ImageDraw) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate, font=_font()) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines


def _box(w: Widget) -> tuple[float, float, float, float]:
    return (w.left, w.top, w.left + w.width - 1, w.top + w.height - 1)


def _draw_widget(draw: ImageDraw.ImageDraw, w: Widget, active_panel: int | None) -> None:
    font = _font()
    x0, y0, x1, y1 = _box(w)
    if w.tag in ("button", "tab"):
        active = w.tag == "tab" and w.role == f"tab{active_panel}"
        fill = (255, 255, 255) if active else (224, 224, 224)
        draw.rectangle((x0, y0, x1, y1), fill=fill, outline=(60, 60, 60) if not w.focused else (0, 90, 220))
        tw = draw.textlength(w.text, font=font)
        draw.text((x0 + (w.width - tw) / 2, y0 + (w.height - 10) / 2 - 1), w.text, fill=(0, 0, 0), font=font)
    elif w.tag.startswith("input_checkbox"):
        draw.rectangle((x0, y0 + 2, x0 + 10, y0 + 12), fill=(255, 255, 255), outline=(60, 60, 60))
        if w.value:
            draw.line((x0 + 2, y0 + 4, x0 + 8, y0 + 10), fill=(0, 0, 0), width=2)
            draw.line((x0 + 2, y0 + 10, x0 + 8, y0 + 4), fill=(0, 0, 0), width=2)
        draw.text((x0 + 15, y0 + 1), w.text, fill=(0, 0, 0), font=font)
    elif w.tag.startswith("input_"):
        draw.rectangle((x0, y0, x1, y1), fill=(255, 255, 255), outline=(0, 90, 220) if w.focused else (120, 120, 120))
        if w.value:
            shown = "*" * len(w.value) if w.tag == "input_password" else w.value
            draw.text((x0 + 3, y0 + 3), shown[:24], fill=(0, 0, 0), font=font)
        else:
            draw.text((x0 + 3, y0 + 3), w.text, fill=(160, 160, 160), font=font)
    else:
        draw.text((x0, y0 + 2), w.text, fill=(0, 0, 0), font=font)


def draw_page(page: Page) -> np.ndarray:
    """Render the instruction banner (rows 0..49) and the visible widgets below it."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH - 1, PAGE_TOP - 1), fill=(255, 255, 0))
    for i, line in enumerate(_wrap(page.instruction, WIDTH - 6, draw)[:4]):
        draw.text((3, 2 + 12 * i), line, fill=(0, 0, 0), font=_font())
    for w in page.visible():
        _draw_widget(draw, w, page.active_panel)
    return np.asarray(image, dtype=np.uint8)
