"""Where the word is in a gray image: its box, the paper's level and polarity, and the lighting
gradient taken out of it (``find_word``).

The paper is measured on a reduced, smoothed copy (``paper``); pixels far enough from it are ink;
the word's box is searched in that ink mask (``word_box``), then re-measured at full resolution
so that the same word comes out at the same scale whatever its margins.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image, ImageFilter

from wordocr.paper import LIGHTING_NOISE, MIN_CONTRAST, Lighting, fit_lighting, measure_paper
from wordocr.word_box import word_box_in_mask

# Ink is looked for on a copy at most this many pixels on its long side (speed on big photos).
DETECT_MAX_SIDE = 512
# Ink must differ from the paper by MIN_CONTRAST gray levels, and by this many times the paper's
# own spread on the side away from the ink (its noise), or the image counts as blank.
MIN_CONTRAST_TO_NOISE = 2.5
# Pixels darker than the paper by more than a threshold (on the smoothed copy) are ink. The
# threshold sits close to the paper, so faint ink next to a dark rule still counts, but clears
# the paper's noise: INK_NOISE_MARGIN times its spread, within these fractions of the contrast.
INK_THRESHOLD = (0.2, 0.5)
INK_NOISE_MARGIN = 1.5
# When the word's darkest ink reaches less than this share of the image's contrast (the darkest
# ink was clutter left out of its box), the word is looked for again at its own contrast.
RETHRESHOLD_SHARE = 0.8
# Paper whose spread is at most this many gray levels is clean enough to read unsmoothed as well:
# there a stroke with a row of paper in it is no rule, however the 3x3 mean joins it (an i's or
# j's dot, a pixel or two above its stem). On noisier paper a rule's own pixels drop out.
SHARP_NOISE = 4


class FoundWord(NamedTuple):
    box: tuple[int, int, int, int]  # top, bottom, left, right in the full-resolution image
    inverted: bool  # ink lighter than the paper
    paper: int  # the paper's gray level (after the lighting was taken out)
    lighting: Lighting | None  # the gradient taken out; None when the paper is even


def find_word(gray: np.ndarray) -> FoundWord | None:
    """The word's box in ``gray`` (uint8), whether ink is light, the paper level, and the
    lighting gradient that was taken out; None when the image holds no ink."""
    factor = max(1, -(-max(gray.shape) // DETECT_MAX_SIDE))
    small = Image.fromarray(gray)
    if factor > 1:
        small = small.reduce(factor)
    # A 3x3 mean keeps strokes but divides pixel noise by three.
    smooth = np.asarray(small.filter(ImageFilter.BoxBlur(1))) if min(small.size) >= 3 else np.asarray(small)

    sharp = np.asarray(small)
    paper, inverted, contrast, noise = measure_paper(smooth, sharp)
    lighting = None
    if noise > LIGHTING_NOISE:  # a wide paper spread: noise, or a gradient worth taking out
        lighting = fit_lighting(smooth, inverted, factor)
        if lighting is not None:
            smooth = lighting.flatten(smooth, 0, 0, 1)
            paper, inverted, contrast, noise = measure_paper(smooth)
    if contrast < max(MIN_CONTRAST, MIN_CONTRAST_TO_NOISE * noise):
        return None

    # On clean paper the unsmoothed image is read too, where the mean closes a pixel's gap.
    sharp = sharp if noise <= SHARP_NOISE and lighting is None else None

    def word_box(contrast: int) -> tuple[int, int, int, int] | None:
        sharp_mask = None if sharp is None else ink_mask(sharp, paper, inverted, contrast, noise)
        return word_box_in_mask(ink_mask(smooth, paper, inverted, contrast, noise), sharp_mask)

    box = word_box(contrast)
    if box is None:
        return None
    # The darkest ink may be clutter the box left out (an underline, a rule, a blot); the
    # threshold it set can be too high for fainter letters, which then come out broken or lost.
    word_contrast = _contrast(smooth[box[0] : box[1], box[2] : box[3]], paper, inverted)
    if word_contrast < RETHRESHOLD_SHARE * contrast:
        again = word_box(word_contrast)
        box = again if again is not None else box
    refined = _refine_box(gray, box, factor, paper, inverted, lighting, keep_lone_pixels=sharp is not None)
    return FoundWord(refined, inverted, paper, lighting)


def ink_mask(smooth: np.ndarray, paper: int, inverted: bool, contrast: int, noise: int) -> np.ndarray:
    """Pixels of ``smooth`` farther from the paper than the ink threshold for ``contrast``."""
    low, high = INK_THRESHOLD
    threshold = min(high * contrast, max(low * contrast, INK_NOISE_MARGIN * noise))
    return smooth > paper + threshold if inverted else smooth < paper - threshold


def _contrast(region: np.ndarray, paper: int, inverted: bool) -> int:
    """How far the ink farthest from the paper in ``region`` is from it."""
    return int(region.max()) - paper if inverted else paper - int(region.min())


def _refine_box(
    gray: np.ndarray,
    box: tuple[int, int, int, int],
    factor: int,
    paper: int,
    inverted: bool,
    lighting: Lighting | None = None,
    keep_lone_pixels: bool = False,
) -> tuple[int, int, int, int]:
    """Re-measure the found box at full resolution, at half the local ink contrast, unsmoothed.

    The box from the reduced copy is off by up to ``factor`` pixels, and the low detection
    threshold widens it by the blur's reach; both would make the same word come out at a
    different scale depending on its margins.
    """
    found = box
    top, bottom, left, right = box
    top, left = max(0, (top - 1) * factor), max(0, (left - 1) * factor)
    bottom, right = min(gray.shape[0], (bottom + 1) * factor), min(gray.shape[1], (right + 1) * factor)
    # Refining adjusts edges by a few pixels; it must not re-detect (a dark speck in the box
    # would otherwise push faint letters under half contrast and cut them off).
    slack = factor + 2
    # Unsmoothed: smoothing would shave thin tips (a t's top) by an amount that depends on size.
    # At half contrast noise pixels are rare and alone; a letter's one-pixel tip is not alone.
    region = gray[top:bottom, left:right]
    if lighting is not None:
        region = lighting.flatten(region, top, left, 1)
    if inverted:
        mask = region > paper + 0.5 * (int(region.max()) - paper)
    else:
        mask = region < paper - 0.5 * (paper - int(region.min()))
    alone = mask
    mask = _without_lone_pixels(mask)
    # On clean paper a lone pixel above or below the letters is ink: a small i's dot.
    rows = np.flatnonzero((alone if keep_lone_pixels else mask).any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or columns.size == 0:
        return top, bottom, left, right
    refined = (top + rows[0], top + rows[-1] + 1, left + columns[0], left + columns[-1] + 1)
    # Each refined edge stays within ``slack`` of the detected one.
    edges = [min(max(int(v), e * factor - slack), e * factor + slack) for v, e in zip(refined, found, strict=True)]
    t, b, lft, rgt = edges
    return max(0, t), min(gray.shape[0], max(b, t + 1)), max(0, lft), min(gray.shape[1], max(rgt, lft + 1))


def _without_lone_pixels(mask: np.ndarray) -> np.ndarray:
    neighbour = np.zeros_like(mask)
    neighbour[1:] |= mask[:-1]
    neighbour[:-1] |= mask[1:]
    neighbour[:, 1:] |= mask[:, :-1]
    neighbour[:, :-1] |= mask[:, 1:]
    return mask & neighbour
