"""Turn any image of a word into the model's input: the one function training and serving share.

Geometry decides whether a model reads sizes and margins it never saw, so the image is
normalised rather than merely resized: polarity to dark ink on light paper, a crop to the ink
(found on a smoothed copy, ignoring specks and far-away clutter), contrast stretched so the ink
is black and the paper white, then scaled to the input height, left-aligned and padded to the
input width (squashed horizontally only if the word would not fit).
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from wordocr.config import DEFAULT_INPUT_SPEC, InputSpec

# Ink is looked for on a copy at most this many pixels on its long side (speed on big photos).
DETECT_MAX_SIDE = 512
# Ink must differ from the paper by this many gray levels, and by this many times the paper's
# own spread on the side away from the ink (its noise), or the image counts as blank.
MIN_CONTRAST = 24
MIN_CONTRAST_TO_NOISE = 2.5
# Pixels darker than the paper by more than a threshold (on the smoothed copy) are ink. The
# threshold sits close to the paper, so faint ink next to a dark rule still counts, but clears
# the paper's noise: INK_NOISE_MARGIN times its spread, within these fractions of the contrast.
INK_THRESHOLD = (0.2, 0.5)
INK_NOISE_MARGIN = 1.5
# When the word's darkest ink reaches less than this share of the image's contrast (the darkest
# ink was clutter left out of its box), the word is looked for again at its own contrast.
RETHRESHOLD_SHARE = 0.8
# Rows/columns with no more than this many ink pixels count as empty (isolated noise pixels).
MIN_PROFILE_COUNT = 1
# Ink bands separated by less than this times the text height belong to the word (an i's dot,
# an underline, letters); farther ones are clutter (neighbouring lines, specks, table rules).
ROW_GAP = 0.3
COLUMN_GAP = 0.8
# Rows/columns holding ink across at least this share of the image are masked out while the
# word's core is looked for (table rules, cell borders); letters come back when the box grows.
RULE_SPAN = 0.9
# The core's rows hold at least this share of the fullest row's ink (ascender-only rows come
# back when the box grows along the strokes).
CORE_ROW_SHARE = 0.1
# A band of rows touching the top or bottom edge counts this much of its ink when the word's
# band is chosen (it is usually the cut-off neighbouring line).
EDGE_BAND_WEIGHT = 0.3
# Strokes hanging in from the top or bottom edge that end before the word's dense rows (those
# with at least DENSE_ROW_SHARE of the fullest row's ink) are a cut-off neighbouring line, and are
# dropped, unless every one of them is no bigger than DOT_SIZE times the dense rows' height (the
# i dots of a word cropped flush with its top: a bold face's dots are half its x-height).
DENSE_ROW_SHARE = 0.5
DOT_SIZE = 0.5
# Rows grown onto the core: at most this times its height beyond it on each side (ascenders,
# descenders and i dots that are not already in it; specks farther out are dropped).
ROW_REACH = 1.0
# Strokes above or below the text band grow the box sideways by at most this times its height.
SIDE_REACH = 0.3
# Full-height columns are a cell border only in runs at most this times the image height wide
# (plus the smoothing's two pixels): wider, they are a bold letter's stem in a crop flush with it.
TALL_RULE_WIDTH = 0.15
# A band of full-width rows is a rule only where a row next to it holds less than this share of
# its ink per row (a rule has paper, or a few descenders, on one side; a word's rows have more word).
RULE_SIDE_SHARE = 0.5
# A stroke at the end of the word is a rule if it is at most RULE_THIN times the text height
# wide and runs on RULE_REACH times the text height above and below the text, RULE_SOLID solid.
RULE_THIN = 0.25
RULE_REACH = 0.2
RULE_SOLID = 0.9
# Where the text comes closer to an image edge than that reach, a rule must still run on this
# many rows past the text, into the edge.
RULE_EDGE_ROWS = 1
# Paper whose spread is at most this many gray levels is clean enough to read unsmoothed as well:
# there a stroke with a row of paper in it is no rule, however the 3x3 mean joins it (an i's or
# j's dot, a pixel or two above its stem). On noisier paper a rule's own pixels drop out.
SHARP_NOISE = 4
# When this share range of the pixels is darker than the middle gray, ink and paper cover about
# as much, and the polarity is read from the image's border instead of its median.
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
# Empty border kept around the ink in the output, in output pixels.
OUTPUT_MARGIN = 2
# The darkest this share of the crop's pixels is taken as the ink colour when stretching.
INK_PERCENTILE = 2.0


def blank_image(spec: InputSpec = DEFAULT_INPUT_SPEC) -> np.ndarray:
    return np.full((spec.height, spec.width), 255, np.uint8)


def preprocess(image: np.ndarray | Image.Image, spec: InputSpec = DEFAULT_INPUT_SPEC) -> np.ndarray:
    """uint8 [spec.height, spec.width], dark ink on a 255 background; blank if there is no ink."""
    gray = to_gray(image)
    if gray.size == 0:
        return blank_image(spec)
    found = _find_ink(gray)
    if found is None:
        return blank_image(spec)
    (top, bottom, left, right), inverted, paper, lighting = found
    crop = gray[top:bottom, left:right]
    if lighting is not None:
        crop = lighting.flatten(crop, top, left, 1)

    inner_height = spec.height - 2 * OUTPUT_MARGIN
    inner_width = spec.width - 2 * OUTPUT_MARGIN
    width = max(1, min(inner_width, round(crop.shape[1] * inner_height / crop.shape[0])))
    resized = Image.fromarray(crop).resize((width, inner_height), Image.Resampling.BILINEAR, reducing_gap=3.0)

    levels = _stretch_lut(crop, inverted, paper)
    out = blank_image(spec)
    out[OUTPUT_MARGIN : OUTPUT_MARGIN + inner_height, OUTPUT_MARGIN : OUTPUT_MARGIN + width] = levels[
        np.asarray(resized)
    ]
    return out


def to_gray(image: np.ndarray | Image.Image) -> np.ndarray:
    """Any PIL image or numpy array (gray, RGB, RGBA; uint8, other ints, float, bool) as uint8 gray.

    Transparent pixels count as white paper, as an image viewer would show them on a page.
    """
    if isinstance(image, Image.Image):
        return np.asarray(_pil_to_gray(image))
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"expected a gray [H, W] or colour [H, W, 3|4] image, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(array.shape[:2], np.uint8)
    array = _to_uint8(array)
    if array.ndim == 2:
        return array
    return np.asarray(_pil_to_gray(Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")))


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    values = np.nan_to_num(array.astype(np.float32))
    if np.issubdtype(array.dtype, np.floating) and values.max() <= 1.0:
        values = values * 255.0  # floats in [0, 1]
    elif values.max() > 255.0:  # 16-bit and similar: rescale the used range
        low, high = values.min(), values.max()
        values = (values - low) * (255.0 / max(high - low, 1e-6))
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def _pil_to_gray(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return Image.fromarray(_to_uint8(np.asarray(image)))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    return image.convert("L")


def _find_ink(gray: np.ndarray) -> tuple[tuple[int, int, int, int], bool, int, _Lighting | None] | None:
    """The ink's box (top, bottom, left, right) in ``gray``, whether ink is light, the paper
    level, and the lighting gradient that was taken out (None when the paper is even)."""
    factor = max(1, -(-max(gray.shape) // DETECT_MAX_SIDE))
    small = Image.fromarray(gray)
    if factor > 1:
        small = small.reduce(factor)
    # A 3x3 mean keeps strokes but divides pixel noise by three.
    smooth = np.asarray(small.filter(ImageFilter.BoxBlur(1))) if min(small.size) >= 3 else np.asarray(small)

    sharp = np.asarray(small)
    paper, inverted, contrast, noise = _levels(smooth, sharp)
    lighting = None
    if noise > LIGHTING_NOISE:  # a wide paper spread: noise, or a gradient worth taking out
        lighting = _lighting(smooth, inverted, factor)
        if lighting is not None:
            smooth = lighting.flatten(smooth, 0, 0, 1)
            paper, inverted, contrast, noise = _levels(smooth)
    if contrast < max(MIN_CONTRAST, MIN_CONTRAST_TO_NOISE * noise):
        return None

    # On clean paper the unsmoothed image is read too, where the mean closes a pixel's gap.
    sharp = sharp if noise <= SHARP_NOISE and lighting is None else None

    def word_box(contrast: int) -> tuple[int, int, int, int] | None:
        sharp_mask = None if sharp is None else _ink_mask(sharp, paper, inverted, contrast, noise)
        return _word_box(_ink_mask(smooth, paper, inverted, contrast, noise), sharp_mask)

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
    return refined, inverted, paper, lighting


def _ink_mask(smooth: np.ndarray, paper: int, inverted: bool, contrast: int, noise: int) -> np.ndarray:
    """Pixels of ``smooth`` farther from the paper than the ink threshold for ``contrast``."""
    low, high = INK_THRESHOLD
    threshold = min(high * contrast, max(low * contrast, INK_NOISE_MARGIN * noise))
    return smooth > paper + threshold if inverted else smooth < paper - threshold


def _contrast(region: np.ndarray, paper: int, inverted: bool) -> int:
    """How far the ink farthest from the paper in ``region`` is from it."""
    return int(region.max()) - paper if inverted else paper - int(region.min())


def _levels(smooth: np.ndarray, unsmoothed: np.ndarray | None = None) -> tuple[int, bool, int, int]:
    """The paper level, whether ink is lighter, the ink's contrast and the paper's spread.

    Polarity: the side of the gray range that the median falls on is the paper's, unless ink and
    paper cover about as much (a bold word cropped flush with its ink); then the paper is what
    the image's border mostly shows. The paper level is the median, unless the commonest level on
    the paper's side is well away from it: when ink covers much of the image the median falls
    between paper and ink, and ink would then look like noise on gray paper.

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
        border = np.concatenate((smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1]))
        inverted = bool((border <= middle).mean() > 0.5)
    peaks = _summed_levels(counts)
    peak = int(np.argmax(peaks[: middle + 1])) if inverted else middle + int(np.argmax(peaks[middle:]))
    even = peaks[peak] >= PAPER_PEAK_SHARE * smooth.size  # not a patch of uneven paper
    median_is_ink = median > middle if inverted else median < middle
    paper = peak if median_is_ink or (abs(peak - median) > PAPER_SHIFT and even) else median
    clean = None if unsmoothed is None else _clean_paper(unsmoothed, middle, inverted)
    paper = paper if clean is None else clean
    if inverted:
        return paper, True, lightest - paper, max(0, paper - _percentile(cumulative, 0.5))
    return paper, False, paper - darkest, max(0, _percentile(cumulative, 99.5) - paper)


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


class _Lighting:
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


def _lighting(smooth: np.ndarray, inverted: bool, factor: int) -> _Lighting | None:
    """The paper's brightness gradient, fitted to the paper-side level of a grid of blocks
    (most of each block is paper); None when it is too weak to matter."""
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
    return _Lighting(coefficients.astype(np.float32))


def _refine_box(
    gray: np.ndarray,
    box: tuple[int, int, int, int],
    factor: int,
    paper: int,
    inverted: bool,
    lighting: _Lighting | None = None,
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


def _percentile(cumulative: np.ndarray, percent: float) -> int:
    return int(np.searchsorted(cumulative, cumulative[-1] * percent / 100.0))


def _word_box(mask: np.ndarray, sharp: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
    """Box of the word in an ink mask, without table rules, far specks and neighbouring lines.

    0. Strokes of a cut-off neighbouring line, hanging in from the top or bottom edge, are
       taken out of the mask (they may come too close to the word for a gap to part them).
    1. The core: the heaviest band of rows, then of columns within it (twice), found with
       full-height columns and full-width rows masked out, so a cell border or table rule does
       not join every row or column into one band.
    2. Grown back over the whole mask, with gaps bounded by the core's height: columns within
       the core's rows (a tall letter masked out in 1 comes back), minus a thin stroke at
       either end that runs well past the text both above and below (a rule, never a letter),
       then rows within those columns (ascenders, descenders, i dots, an underline right below).

    ``sharp``, where given, is the ink mask of the unsmoothed image, for telling rules from letters.
    """
    core_mask = _without_rules(mask)
    cleaned = _without_hanging_strokes(mask, core_mask)
    if cleaned is not None:
        mask, core_mask = cleaned, _without_rules(cleaned)
    core = _core_box(core_mask)
    if core is None:
        return None
    top, bottom, left, right = core
    text = bottom - top
    left, right = _grow(mask[top:bottom].sum(axis=0), left, right, COLUMN_GAP * text, COLUMN_GAP * text)
    grown = left, right
    left, right = _drop_edge_rules(mask, top, bottom, left, right, sharp)
    gap, reach = max(2, round(ROW_GAP * text)), max(2, round(ROW_REACH * text))
    # The mean fades a small i's one-pixel dot below the threshold; unsmoothed it is still ink.
    # Upward only (below, a thin underline the mean faded is better left out), and only with
    # paper along the top edge: there, a cut-off line above would join in by its faint strokes.
    above = mask if sharp is None or sharp[0].any() else mask | sharp
    top = _follow_strokes(above[:, left:right], top, -1, gap, reach)
    bottom = _follow_strokes(mask[:, left:right], bottom - 1, 1, gap, reach) + 1
    # A stroke beyond the text band may reach past the word's ends (a y's tail swinging back
    # under the first letter): the columns grow again over the final rows, touching ink only,
    # not along a line across the word (an underline) and never back over a dropped rule.
    rows = mask[top:bottom]
    lines = rows[:, left:right].sum(axis=1) >= RULE_SPAN * (right - left)
    wider = _grow(rows[~lines].sum(axis=0), left, right, 0, SIDE_REACH * text)
    left = wider[0] if left == grown[0] else left
    right = wider[1] if right == grown[1] else right
    return top, bottom, left, right


def _without_rules(mask: np.ndarray) -> np.ndarray:
    """``mask`` without its full-height columns and full-width rows (unless that leaves nothing).

    Full-width rows count only in thin bands with little ink next to them on at least one side:
    a heavy word cropped flush with its ends fills rows of its x-height from edge to edge too,
    but those make up a good part of its height and have the rest of the word on both sides.
    """
    height, width = mask.shape
    tall = _thin_runs(mask.sum(axis=0) >= RULE_SPAN * height, TALL_RULE_WIDTH * height + 2)
    if tall.any():
        # The rest of the ink spans the height too: a crop flush with the word, whose l and j
        # stems reach both edges as a border would.
        rest = np.flatnonzero(mask[:, ~tall].any(axis=1))
        if rest.size and rest[-1] + 1 - rest[0] >= RULE_SPAN * height:
            tall[:] = False
    row_ink = mask.sum(axis=1)
    wide = row_ink >= RULE_SPAN * width
    if wide.any():
        inked = np.flatnonzero(row_ink)
        wide = _rule_bands(wide, row_ink, max(2, RULE_THIN * (inked[-1] + 1 - inked[0])) + 1)
    if not (tall.any() or wide.any()):
        return mask
    core_mask = mask & ~tall[None, :] & ~wide[:, None]
    return core_mask if core_mask.any() else mask


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of set entries in a 1-D bool array, in order."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], flags, [False]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _thin_runs(flags: np.ndarray, widest: float) -> np.ndarray:
    """``flags`` without its runs of more than ``widest`` set entries."""
    thin = flags.copy()
    for start, end in _runs(flags):
        if end - start > widest:
            thin[start:end] = False
    return thin


def _rule_bands(wide: np.ndarray, row_ink: np.ndarray, thickest: float) -> np.ndarray:
    """The runs of ``wide`` rows that look like a rule: at most ``thickest`` rows, and a row next
    to the run, above or below, with under RULE_SIDE_SHARE of the run's ink per row."""
    rules = np.zeros_like(wide)
    for start, end in _runs(wide):
        above = row_ink[start - 1] if start > 0 else 0
        below = row_ink[end] if end < len(row_ink) else 0
        if end - start <= thickest and min(above, below) < RULE_SIDE_SHARE * row_ink[start:end].mean():
            rules[start:end] = True
    return rules


def _without_hanging_strokes(mask: np.ndarray, core_mask: np.ndarray) -> np.ndarray | None:
    """``mask`` without the strokes of a cut-off neighbouring line at the top or bottom edge, or
    None when there are none.

    Such strokes hang in from the edge and end before the word's dense rows; they often come so
    close to the word (or touch its ascenders) that no empty row parts them from it, so they are
    told apart by connection: a letter touching the edge (a crop flush with an l) runs on into
    the dense rows.
    """
    if not (mask[0].any() or mask[-1].any()):
        return None
    rows = core_mask.sum(axis=1)
    # The heaviest band of dense rows (not one cut by the edge: a neighbouring line's strokes can
    # be as dense where the crop cuts them).
    dense = _main_span(np.where(rows >= DENSE_ROW_SHARE * rows.max(), rows, 0), 0.0, height=None)
    if dense is None:
        return None
    top, bottom = dense
    dot = max(2.0, DOT_SIZE * (bottom - top))
    cleaned = mask
    for flipped, limit in ((False, top), (True, mask.shape[0] - bottom)):
        view = cleaned[::-1] if flipped else cleaned
        hanging = _hanging(view, limit, dot)
        if hanging is not None:
            view = view & ~hanging
            cleaned = view[::-1] if flipped else view
    return None if cleaned is mask or not cleaned.any() else cleaned


def _hanging(mask: np.ndarray, limit: int, dot: float) -> np.ndarray | None:
    """Ink reached from ``mask``'s first row going down (to a pixel below or diagonally below)
    without reaching row ``limit``, where some piece of it is bigger than ``dot`` (a stroke,
    not an i's dot); None if there is none."""
    if limit < 2 or not mask[0].any():
        return None
    # Rows as Python ints (one bit a column): the walk down costs a few integer operations a row.
    width = mask.shape[1]
    packed = np.packbits(mask[: limit + 1], axis=1)
    reached = [int.from_bytes(packed[0].tobytes(), "big")]
    for row in packed[1:]:
        above = reached[-1]
        reached.append(int.from_bytes(row.tobytes(), "big") & (above | above << 1 | above >> 1))
        if not reached[-1]:
            break
    # Ink reached in row ``limit`` (the word's dense rows), then the rows above it as a mask.
    into_word = _unpack(reached.pop() if len(reached) > limit else 0, packed.shape[1], width)
    walked = np.stack([_unpack(r, packed.shape[1], width) for r in reached])
    # Pieces: runs of the walked columns; one that goes on into row ``limit`` is part of the word.
    hanging = np.zeros_like(mask)
    big = False
    for start, end in _runs(walked.any(axis=0)):
        if into_word[max(0, start - 1) : end + 1].any():
            continue
        depth = np.flatnonzero(walked[:, start:end].any(axis=1))[-1] + 1
        # The piece's whole box: the walk down may miss the bottom of a loop.
        hanging[:depth, start:end] = mask[:depth, start:end]
        big = big or max(depth, end - start) > dot
    return hanging if big else None


def _unpack(bits: int, nbytes: int, width: int) -> np.ndarray:
    """A row packed into an int (first column in the highest bit) as a bool array."""
    return np.unpackbits(np.frombuffer(bits.to_bytes(nbytes, "big"), np.uint8))[:width].astype(bool)


def _follow_strokes(mask: np.ndarray, row: int, step: int, gap: int, reach: int) -> int:
    """The last row, going from ``row`` in direction ``step``, with ink that continues the ink
    of the row before it (same or next column), allowing breaks of up to ``gap`` rows (an i's
    dot, an underline right below) and going at most ``reach`` rows. Specks that do not sit
    on a letter's stroke, and rules or lines farther than ``gap``, are not reached."""
    alive = np.where(mask[row], gap, 0)
    edge = row
    stop = min(row + reach + 1, mask.shape[0]) if step > 0 else max(row - reach - 1, -1)
    for r in range(row + step, stop, step):
        near = alive.copy()
        np.maximum(near[1:], alive[:-1], out=near[1:])
        np.maximum(near[:-1], alive[1:], out=near[:-1])
        hit = mask[r] & (near > 0)
        if hit.any():
            edge = r
        alive = np.where(hit, gap, np.maximum(near - 1, 0))
        if not alive.any():
            break
    return edge


def _core_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Rows, then columns, then rows again over those columns (so ink far to the side no longer
    stretches the rows), then columns again. The rows are one unbroken band (a word's rows are;
    dots and specks join later, within reach)."""
    top, bottom, left, right = 0, mask.shape[0], 0, mask.shape[1]
    for _ in range(2):
        rows = mask[:, left:right].sum(axis=1)
        # Only rows with a fair share of the word's ink: scattered specks do not join them.
        rows = np.where(rows >= CORE_ROW_SHARE * rows.max(), rows, 0)
        rows = _main_span(rows, 0.0, height=None)
        if rows is None:
            return None
        top, bottom = rows
        columns = _main_span(mask[top:bottom].sum(axis=0), COLUMN_GAP, height=bottom - top)
        if columns is None:
            return None
        left, right = columns
    return top, bottom, left, right


def _grow(profile: np.ndarray, start: int, end: int, gap: float, reach: float) -> tuple[int, int]:
    """[start, end) grown over non-empty ``profile`` entries at most ``gap`` away (chained), by
    at most ``reach`` on each side."""
    filled = profile > MIN_PROFILE_COUNT
    tolerance = max(2, int(gap))
    bounds = []
    for step, first, stop in ((-1, start - 1, max(0, start - max(2, int(reach))) - 1),
                              (1, end, min(len(profile), end + max(2, int(reach))))):  # fmt: skip
        edge, empty = None, 0
        for i in range(first, stop, step):
            if filled[i]:
                edge, empty = i, 0
            else:
                empty += 1
                if empty > tolerance:
                    break
        bounds.append(edge)
    low = start if bounds[0] is None else bounds[0]
    high = end if bounds[1] is None else bounds[1] + 1
    return low, high


def _drop_edge_rules(
    mask: np.ndarray, top: int, bottom: int, left: int, right: int, sharp: np.ndarray | None = None
) -> tuple[int, int]:
    """Shrink [left, right) past a thin stroke at either end that crosses the text band [top,
    bottom) and runs on past it by a good part of its height both above and below: a table
    rule or cell border. A letter never does both (an l stops at the baseline, a j's dot is
    apart from its stem, an italic f is wide).

    A rule that touches the first or last letter (blur, or a tight cell) leaves no gap to
    split at; then the run of columns inked over (almost) the whole image height at that end
    is the candidate.
    """
    tall = mask.sum(axis=0) >= RULE_SPAN * mask.shape[0]
    for _ in range(4):
        columns = np.flatnonzero(mask[top:bottom, left:right].any(axis=0))
        if columns.size == 0:
            return left, right
        start, end = left + columns[0], left + columns[-1] + 1
        # Candidates (begin, end, where the box resumes if it is a rule) at each end: the ink up
        # to the first (from the last) gap, the piece after it (a speck outside a cell border
        # would hide the border), else the tall run of columns there.
        gaps = np.flatnonzero(np.diff(columns) > 1)
        starts = left + np.concatenate(([columns[0]], columns[gaps + 1]))
        ends = left + np.concatenate((columns[gaps], [columns[-1]])) + 1
        n = len(starts)
        firsts = [(starts[i], ends[i], starts[i + 1]) for i in range(min(2, n - 1))]
        lasts = [(starts[i], ends[i], ends[i - 1]) for i in range(n - 1, max(0, n - 3), -1)]
        # The tall run at the end, or just inside it (a speck touching a border on its outer side).
        speck = round(RULE_THIN * (bottom - top))
        inner = start + np.argmax(tall[start : start + speck + 1])
        stop = inner + _run_length(tall, inner, 1)
        firsts.append((inner, stop, stop))
        inner = end - 1 - np.argmax(tall[max(start, end - 1 - speck) : end][::-1])
        begin = inner + 1 - _run_length(tall, inner, -1)
        lasts.append((begin, inner + 1, begin))
        cut = next((resume for b, e, resume in firsts if e > b and _is_rule(mask, top, bottom, b, e, sharp)), None)
        if cut is not None:
            left = cut
            continue
        cut = next((resume for b, e, resume in lasts if e > b and _is_rule(mask, top, bottom, b, e, sharp)), None)
        if cut is None:
            break
        right = cut
    # The box starts and ends on ink (a cut tall run may be followed by paper).
    columns = np.flatnonzero(mask[top:bottom, left:right].any(axis=0))
    if columns.size:
        left, right = left + columns[0], left + columns[-1] + 1
    return left, right


def _run_length(flags: np.ndarray, start: int, step: int) -> int:
    """How many ``flags`` are set in a row from index ``start`` going in direction ``step``."""
    count, i = 0, start
    while 0 <= i < len(flags) and flags[i]:
        count, i = count + 1, i + step
    return count


def _is_rule(
    mask: np.ndarray, top: int, bottom: int, left: int, right: int, sharp: np.ndarray | None = None
) -> bool:
    text = bottom - top
    # The smoothing before thresholding widens every stroke by a pixel on each side.
    if right - left > max(2, RULE_THIN * text) + 2:
        return False
    reach = max(2, round(RULE_REACH * text))
    above, below, height = top - reach, bottom + reach, mask.shape[0]
    # Closer to an image edge than ``reach``: the stroke must still pass the band by
    # RULE_EDGE_ROWS and run into that edge, as a rule cut by the crop does; a letter stops
    # short of it (an l ends at the baseline, and a crop flush with the baseline leaves no
    # rows to pass). At least one side must show the full ``reach``.
    if above < 0:
        if below > height or top < RULE_EDGE_ROWS or not mask[0, left:right].any():
            return False
        above = 0
    if below > height:
        if height - bottom < RULE_EDGE_ROWS or not mask[height - 1, left:right].any():
            return False
        below = height
    # Ink without a break from ``reach`` above the band to ``reach`` below it, on each side by
    # itself too: a tall letter's stem (a d's) runs far past the band on one side, and on noisy
    # ink may poke out by a row or two on the other.
    run = mask[above:below, left:right].any(axis=1)
    past = min(run[: top - above].mean(), run[bottom - above :].mean())
    if run.mean() < RULE_SOLID or past < RULE_SOLID:
        return False
    if sharp is None:
        return True
    # The whole stroke as the smoothed mask joins it, out from the band: unsmoothed, a rule has
    # ink in every row of it; an i or j has paper between its dot and its stem.
    inked = mask[:, left:right].any(axis=1)
    start, end = top - _run_length(inked, top - 1, -1), bottom + _run_length(inked, bottom, 1)
    return bool(sharp[start:end, left:right].any(axis=1).all())


def _main_span(profile: np.ndarray, gap: float, height: int | None) -> tuple[int, int] | None:
    """[start, end) of the heaviest run of non-zero ``profile`` entries, grown over neighbouring
    runs whose gap is at most ``gap`` times the text height (``height``; None: the heaviest
    run's own length) or two entries, whichever is more."""
    filled = np.flatnonzero(profile > MIN_PROFILE_COUNT)
    if filled.size == 0:
        return None
    breaks = np.flatnonzero(np.diff(filled) > 1)
    starts = np.concatenate(([filled[0]], filled[breaks + 1]))
    ends = np.concatenate((filled[breaks], [filled[-1]])) + 1
    cumulative = np.concatenate(([0], np.cumsum(profile)))
    masses = (cumulative[ends] - cumulative[starts]).astype(np.float64)
    if height is None and len(starts) > 1:
        # Rows: a band cut by the image edge is more likely the next line than the word.
        masses[(starts == 0) | (ends == len(profile))] *= EDGE_BAND_WEIGHT
    first = last = int(np.argmax(masses))
    tolerance = max(2.0, gap * (height if height is not None else ends[first] - starts[first]))
    while True:
        grow_left = first > 0 and starts[first] - ends[first - 1] <= tolerance
        grow_right = last < len(starts) - 1 and starts[last + 1] - ends[last] <= tolerance
        if not (grow_left or grow_right):
            return int(starts[first]), int(ends[last])
        first -= grow_left
        last += grow_right


def _stretch_lut(crop: np.ndarray, inverted: bool, paper: int) -> np.ndarray:
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


# What a client may send. Only formats Pillow decodes itself: EPS/PS would run Ghostscript on the
# client's bytes, and the long tail of rare plugins is where malformed files raise odd exceptions.
DECODE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


class InvalidImageError(ValueError):
    """Bytes that are not an image this service can read (with a message saying why)."""


def decode_image_bytes(data: bytes, max_pixels: int = 20_000_000) -> np.ndarray:
    """Decode PNG/JPEG/GIF/BMP/TIFF/WebP bytes (DECODE_FORMATS) to uint8 gray, refusing what is not safe to read.

    The pixel count is checked from the header, before any pixel is decoded, so a small file
    claiming a huge canvas (a decompression bomb) costs nothing.
    """
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
        raise InvalidImageError("no image data")
    try:
        # Image.open reads only the header. Pillow itself refuses images above twice
        # Image.MAX_IMAGE_PIXELS (DecompressionBombError, turned into InvalidImageError below);
        # our own, lower limit is checked here, before decoding. (No warnings.catch_warnings:
        # it is process-global and the predictor decodes in threads.)
        with Image.open(io.BytesIO(data), formats=DECODE_FORMATS) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InvalidImageError(f"image has zero size ({width}x{height})")
            if width * height > max_pixels:
                raise InvalidImageError(
                    f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
                )
            image.load()
            return to_gray(ImageOps.exif_transpose(image))
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImageError(f"image is too large to decode safely: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise InvalidImageError("data is not an image in a format this service reads") from exc
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, ArithmeticError, LookupError, struct.error) as exc:
        # A malformed file reaches corners of Pillow's parsers that raise whatever the bad value
        # hit first (a TIFF strip offset given as a fraction: TypeError; a huge one: OverflowError).
        raise InvalidImageError(f"image is truncated or corrupt: {exc}") from exc
