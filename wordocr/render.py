"""Draw a word in a font face: black ink on a white gray-scale canvas (degradations come later)."""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from wordocr.fonts import FontFace, family_dir, load_font

# The predictor's word endpoint draws the requested word like this: one training font at its
# regular weight, large and clean, so the endpoint shows what the model reads at its best.
REQUEST_FAMILY = "roboto"
REQUEST_FILE = "Roboto[wdth,wght].ttf"
REQUEST_SIZE = 48
REQUEST_MARGIN = 16

Margins = tuple[int, int, int, int]  # left, top, right, bottom, in pixels


def render_word(word: str, face: FontFace, size: int, margins: Margins = (8, 8, 8, 8)) -> np.ndarray:
    """uint8 [h, w]: ``word`` in black on white, with ``margins`` around the ink."""
    font = load_font(face, size)
    left, top, right, bottom = font.getbbox(word)
    ml, mt, mr, mb = margins
    width = max(1, right - left + ml + mr)
    height = max(1, bottom - top + mt + mb)
    canvas = Image.new("L", (width, height), 255)
    ImageDraw.Draw(canvas).text((ml - left, mt - top), word, font=font, fill=0)
    return np.asarray(canvas)


def random_margins(rng: np.random.Generator, size: int, low: float = 0.0, high: float = 1.0) -> Margins:
    """Independent margins per side, each ``size * U(low, high)`` pixels: the word lands anywhere."""
    return tuple(int(v) for v in np.round(size * rng.uniform(low, high, size=4)))  # type: ignore[return-value]


@cache  # finding the package costs more than a third of drawing the word; a failure is not cached
def request_face() -> FontFace:
    folder = family_dir(REQUEST_FAMILY)
    if folder is None:
        raise RuntimeError(f"font package fontpkg_{REQUEST_FAMILY} is not installed")
    return FontFace(REQUEST_FAMILY, str(folder / REQUEST_FILE), (("wght", 400.0),))


def render_request_word(word: str) -> np.ndarray:
    """The canonical clean rendering of ``word`` (deterministic), as the word endpoint draws it."""
    margin = REQUEST_MARGIN
    return render_word(word, request_face(), REQUEST_SIZE, (margin, margin, margin, margin))
