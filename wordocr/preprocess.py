"""Turn any image of a word into the model's input: the one function training and serving share.

Geometry decides whether a model reads sizes and margins it never saw, so the image is
normalised rather than merely resized: polarity to dark ink on light paper, a crop to the ink
(found on a smoothed copy, ignoring specks and far-away clutter), contrast stretched so the ink
is black and the paper white, then scaled to the input height, left-aligned and padded to the
input width (squashed horizontally only if the word would not fit).
"""

from __future__ import annotations

import io

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
# Rows/columns with no more than this many ink pixels count as empty (isolated noise pixels).
MIN_PROFILE_COUNT = 1
# Ink bands separated by less than this times the text height belong to the word (an i's dot,
# an underline, letters); farther ones are clutter (neighbouring lines, specks, table rules).
ROW_GAP = 0.5
COLUMN_GAP = 0.8
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
    (top, bottom, left, right), inverted, paper = found
    crop = gray[top:bottom, left:right]

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


def _find_ink(gray: np.ndarray) -> tuple[tuple[int, int, int, int], bool, int] | None:
    """The ink's box (top, bottom, left, right) in ``gray``, whether ink is light, and the paper level."""
    factor = max(1, -(-max(gray.shape) // DETECT_MAX_SIDE))
    small = Image.fromarray(gray)
    if factor > 1:
        small = small.reduce(factor)
    # A 3x3 mean keeps strokes but divides pixel noise by three.
    smooth = np.asarray(small.filter(ImageFilter.BoxBlur(1))) if min(small.size) >= 3 else np.asarray(small)

    counts = np.bincount(smooth.ravel(), minlength=256)
    cumulative = np.cumsum(counts)
    paper = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    darkest, lightest = int(smooth.min()), int(smooth.max())
    inverted = lightest - paper > paper - darkest
    if inverted:
        contrast = lightest - paper
        noise = paper - _percentile(cumulative, 0.5)
    else:
        contrast = paper - darkest
        noise = _percentile(cumulative, 99.5) - paper
    if contrast < max(MIN_CONTRAST, MIN_CONTRAST_TO_NOISE * noise):
        return None

    low, high = INK_THRESHOLD
    threshold = min(high * contrast, max(low * contrast, INK_NOISE_MARGIN * noise))
    mask = smooth > paper + threshold if inverted else smooth < paper - threshold
    box = _word_box(mask)
    if box is None:
        return None
    return _refine_box(gray, box, factor, paper, inverted), inverted, paper


def _refine_box(
    gray: np.ndarray, box: tuple[int, int, int, int], factor: int, paper: int, inverted: bool
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
    if inverted:
        mask = region > paper + 0.5 * (int(region.max()) - paper)
    else:
        mask = region < paper - 0.5 * (paper - int(region.min()))
    mask = _without_lone_pixels(mask)
    rows = np.flatnonzero(mask.any(axis=1))
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


def _word_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Box of the main cluster of ink: rows, then columns, then rows again over those columns
    (so a rule far to the side no longer stretches the rows), then columns again."""
    top, bottom, left, right = 0, mask.shape[0], 0, mask.shape[1]
    for _ in range(2):
        rows = _main_span(mask[:, left:right].sum(axis=1), ROW_GAP, height=None)
        if rows is None:
            return None
        top, bottom = rows
        columns = _main_span(mask[top:bottom].sum(axis=0), COLUMN_GAP, height=bottom - top)
        if columns is None:
            return None
        left, right = _drop_edge_rules(mask[top:bottom], *columns)
    return top, bottom, left, right


def _drop_edge_rules(band: np.ndarray, left: int, right: int) -> tuple[int, int]:
    """Shrink [left, right) past a thin stroke at either end that is more than twice as tall as
    the rest of the ink: a table rule or cell border, not a letter (an l is under twice x-height)."""
    for _ in range(2):
        columns = band[:, left:right].any(axis=0)
        filled = np.flatnonzero(columns)
        gaps = np.flatnonzero(np.diff(filled) > 1)
        if gaps.size == 0:
            break
        first_end = left + filled[gaps[0]] + 1
        last_start = left + filled[gaps[-1] + 1]
        if _is_rule(band[:, left:first_end], band[:, first_end:right]):
            left = left + filled[gaps[0] + 1]
        elif _is_rule(band[:, last_start:right], band[:, left:last_start]):
            right = left + filled[gaps[-1]] + 1
        else:
            break
    return left, right


def _is_rule(stroke: np.ndarray, rest: np.ndarray) -> bool:
    stroke_rows = np.flatnonzero(stroke.any(axis=1))
    rest_rows = np.flatnonzero(rest.any(axis=1))
    if stroke_rows.size == 0 or rest_rows.size == 0:
        return False
    stroke_height = stroke_rows[-1] - stroke_rows[0] + 1
    rest_height = rest_rows[-1] - rest_rows[0] + 1
    return stroke.shape[1] <= 0.15 * stroke_height and rest_height * 2 < stroke_height


def _main_span(profile: np.ndarray, gap: float, height: int | None) -> tuple[int, int] | None:
    """[start, end) of the heaviest run of non-zero ``profile`` entries, grown over neighbouring
    runs whose gap is at most ``gap`` times the text height (the span's own length for rows)."""
    filled = np.flatnonzero(profile > MIN_PROFILE_COUNT)
    if filled.size == 0:
        return None
    breaks = np.flatnonzero(np.diff(filled) > 1)
    starts = np.concatenate(([filled[0]], filled[breaks + 1]))
    ends = np.concatenate((filled[breaks], [filled[-1]])) + 1
    cumulative = np.concatenate(([0], np.cumsum(profile)))
    masses = cumulative[ends] - cumulative[starts]
    first = last = int(np.argmax(masses))
    while True:
        span = ends[last] - starts[first]
        tolerance = max(2.0, gap * (height if height is not None else span))
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


class InvalidImageError(ValueError):
    """Bytes that are not an image this service can read (with a message saying why)."""


def decode_image_bytes(data: bytes, max_pixels: int = 20_000_000) -> np.ndarray:
    """Decode PNG/JPEG/GIF/BMP/TIFF/WebP... bytes to uint8 gray, refusing what is not safe to read.

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
        with Image.open(io.BytesIO(data)) as image:
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
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImageError(f"image is truncated or corrupt: {exc}") from exc
