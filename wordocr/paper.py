"""The paper under a word: its gray level, which side of it the ink is, its noise, uneven lighting
across it, and the table that levels a crop to black ink on white paper.

Everything here reads gray levels only; where the word is in the image is ``word_finder``'s job.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Ink must differ from the paper by this many gray levels, or the image counts as blank (and a
# crop is stretched as if it did, so faint noise is not blown up to black).
MIN_CONTRAST = 24
# When this share range of the pixels is darker than the middle gray, ink and paper cover about
# as much, and the polarity is read from the image's left and right edges instead of its median.
POLARITY_AMBIGUOUS = (0.3, 0.7)
# The paper level is the peak of the gray-level counts summed over this many levels either side.
PAPER_PEAK_WIDTH = 2
# The median gray level stands for the paper unless that peak is more than this many levels away.
PAPER_SHIFT = 16
# ... and holds at least this share of the pixels (on uneven paper no level does).
PAPER_PEAK_SHARE = 0.25
# Paper is clean when this share of the unsmoothed pixels on its side of the middle gray lie
# within PAPER_PEAK_WIDTH levels of one level (the rest: the ink's anti-aliased edges). Noisy
# paper, a gradient, or a margin of another gray (a rotated crop's fill) spread it wider.
CLEAN_PAPER_SHARE = 0.7
# Uneven lighting is looked for when the paper spreads over more than LIGHTING_NOISE levels; it
# is fitted on a LIGHTING_GRID x LIGHTING_GRID grid of blocks and taken out
# when it changes the paper by at least MIN_LIGHTING_SPAN gray levels across the image.
LIGHTING_GRID = 4
LIGHTING_NOISE = 10
MIN_LIGHTING_SPAN = 8
# The darkest this share of the crop's pixels is taken as the ink colour when stretching.
INK_PERCENTILE = 2.0


class PaperLevels(NamedTuple):
    paper: int  # the paper's gray level
    inverted: bool  # ink lighter than the paper
    contrast: int  # how far the ink farthest from the paper is from it
    noise: int  # the paper's spread on the side away from the ink


def measure_paper(smooth: np.ndarray, unsmoothed: np.ndarray | None = None) -> PaperLevels:
    """The paper level, whether ink is lighter, the ink's contrast and the paper's spread.

    Polarity: the side of the gray range that the median falls on is the paper's, unless ink and
    paper cover about as much (a bold word cropped flush with its ink); then the paper is what
    the image's left and right edges mostly show. Not the whole border: a flush crop's top and
    bottom rows run along the flat tops and baselines of capitals (EFT, serifs), which can be
    mostly ink, while its sides touch only the first and last letters' outermost points, round,
    slanted or anti-aliased in nearly every letter (on flush crops of the validation faces, the
    border picked the wrong polarity for 5 % of words in capitals, the sides for none).

    The paper level is the median, unless the commonest level on the paper's side is well away
    from it: when ink covers much of the image the median falls between paper and ink, and ink
    would then look like noise on gray paper.

    Where the ``unsmoothed`` image is given and its paper is clean (one level, give or take a
    couple), that level is the paper: the 3x3 mean mixes every paper pixel next to a stroke with
    ink, which in a crop flush with bold ink, or among many thin strokes, moves the smoothed peak
    and median off the paper and makes the paper look noisy (a lighting gradient gets fitted to
    it, or the contrast falls below the noise and the word is lost).
    """
    counts = np.bincount(smooth.ravel(), minlength=256)
    cumulative = np.cumsum(counts)
    median = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    darkest, lightest = int(smooth.min()), int(smooth.max())
    middle = (darkest + lightest) // 2
    inverted = lightest - median > median - darkest
    dark_share = cumulative[middle] / cumulative[-1]
    if POLARITY_AMBIGUOUS[0] <= dark_share <= POLARITY_AMBIGUOUS[1]:
        sides = np.concatenate((smooth[:, 0], smooth[:, -1]))
        inverted = bool((sides <= middle).mean() > 0.5)
    peaks = _summed_levels(counts)
    peak = int(np.argmax(peaks[: middle + 1])) if inverted else middle + int(np.argmax(peaks[middle:]))
    even = peaks[peak] >= PAPER_PEAK_SHARE * smooth.size  # not a patch of uneven paper
    median_is_ink = median > middle if inverted else median < middle
    paper = peak if median_is_ink or (abs(peak - median) > PAPER_SHIFT and even) else median
    clean = None if unsmoothed is None else _clean_paper(unsmoothed, middle, inverted)
    paper = paper if clean is None else clean
    if inverted:
        return PaperLevels(paper, True, lightest - paper, max(0, paper - _percentile(cumulative, 0.5)))
    return PaperLevels(paper, False, paper - darkest, max(0, _percentile(cumulative, 99.5) - paper))


def _clean_paper(unsmoothed: np.ndarray, middle: int, inverted: bool) -> int | None:
    """The paper level of ``unsmoothed`` if its paper is clean: CLEAN_PAPER_SHARE of the pixels on
    the paper's side of ``middle`` lie within PAPER_PEAK_WIDTH levels of one level; else None."""
    counts = np.bincount(unsmoothed.ravel(), minlength=256)
    side = counts[: middle + 1] if inverted else counts[middle + 1 :]
    if not side.any():  # one level all over: nothing is paper beside ink
        return None
    window = _summed_levels(side)
    best = int(np.argmax(window))
    if window[best] < CLEAN_PAPER_SHARE * max(1, side.sum()):
        return None
    return best if inverted else middle + 1 + best


def _summed_levels(counts: np.ndarray) -> np.ndarray:
    """Gray-level counts summed over PAPER_PEAK_WIDTH neighbouring levels each side, so noisy
    paper still has one clear peak."""
    return np.convolve(counts, np.ones(2 * PAPER_PEAK_WIDTH + 1), mode="same")


def _percentile(cumulative: np.ndarray, percent: float) -> int:
    return int(np.searchsorted(cumulative, cumulative[-1] * percent / 100.0))


class Lighting:
    """A brightness plane ``a + b * x + c * y`` over the full-resolution image, taken out so the
    paper is one level everywhere (uneven light on a photo or scan)."""

    def __init__(self, coefficients: np.ndarray):
        self.coefficients = coefficients

    def flatten(self, image: np.ndarray, top: int, left: int, step: int) -> np.ndarray:
        """``image`` (whose pixel (0, 0) is full-resolution (top, left), ``step`` pixels apart)
        with the plane's variation removed, as uint8."""
        _, b, c = self.coefficients
        ys = (top + step * np.arange(image.shape[0], dtype=np.float32))[:, None]
        xs = (left + step * np.arange(image.shape[1], dtype=np.float32))[None, :]
        flat = image.astype(np.float32) - (b * xs + c * ys)
        return np.clip(flat + 0.5, 0, 255).astype(np.uint8)


def fit_lighting(smooth: np.ndarray, inverted: bool, factor: int) -> Lighting | None:
    """The paper's brightness gradient, fitted to the paper-side level of a grid of blocks
    (most of each block is paper); None when it is too weak to matter.

    ``smooth`` is the image reduced by ``factor``; the plane is over full-resolution pixels."""
    grid = LIGHTING_GRID
    h, w = smooth.shape
    if h < 2 * grid or w < 2 * grid:
        return None
    bh, bw = h // grid, w // grid
    blocks = smooth[: bh * grid, : bw * grid].reshape(grid, bh, grid, bw).transpose(0, 2, 1, 3).reshape(grid, grid, -1)
    # The paper side of each block: ink pulls a block's median but not this percentile.
    level = np.percentile(blocks, 25 if inverted else 75, axis=2)
    ys, xs = np.mgrid[0:grid, 0:grid]
    xs = (xs + 0.5) * bw * factor
    ys = (ys + 0.5) * bh * factor
    design = np.stack([np.ones(grid * grid), xs.ravel(), ys.ravel()], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, level.ravel(), rcond=None)
    span = abs(coefficients[1]) * w * factor + abs(coefficients[2]) * h * factor
    if span < MIN_LIGHTING_SPAN:
        return None
    return Lighting(coefficients.astype(np.float32))


def stretch_table(crop: np.ndarray, inverted: bool, paper: int) -> np.ndarray:
    """A 256-entry table mapping the crop's gray levels to black ink on white paper."""
    levels = np.arange(256, dtype=np.float32)
    counts = np.bincount(crop.ravel(), minlength=256)
    if inverted:
        levels = 255.0 - levels
        counts = counts[::-1]
        paper = 255 - paper
    ink = _percentile(np.cumsum(counts), INK_PERCENTILE)
    ink = min(ink, paper - MIN_CONTRAST)
    return np.clip((levels - ink) * (255.0 / (paper - ink)), 0, 255).round().astype(np.uint8)
