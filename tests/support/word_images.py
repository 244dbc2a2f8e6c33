"""Words drawn for the preprocessing tests: a face to draw in, a page around a crop, and how far
two model inputs are apart."""

from __future__ import annotations

import numpy as np

from wordocr.fonts import FontFace, font_faces


def train_face(family: str = "lora") -> FontFace:
    """The upright face of a training font family."""
    return next(f for f in font_faces("train") if f.family == family and not f.italic)


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two gray images, in gray levels."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def on_page(word: np.ndarray, top: int = 60, bottom: int = 60, left: int = 60, right: int = 60) -> np.ndarray:
    """``word`` with white paper around it, as a crop from a page with margins."""
    return np.pad(word, ((top, bottom), (left, right)), constant_values=255)
