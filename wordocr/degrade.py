"""Make clean renderings look like real word crops, by tier of difficulty.

Tiers:
  clean  font, size and position variety only (black on white)
  noisy  + small rotation, blur, gaussian noise, paper/ink gray levels, sometimes light-on-dark
  hard   + JPEG artefacts, low resolution, slant (shear), stroke weight, underline, clutter
         (table rules, cut-off neighbouring lines, specks), uneven lighting
  tight  clean, but cropped flush with the ink on every side, as people crop a word by hand
         (a test tier: with bold faces the ink covers much of such an image)
  train  a random mixture of the three (mostly noisy and hard) with extra size, margin and
         width jitter: what the model learns from

Every random choice comes from the ``numpy.random.Generator`` passed in, so a sample is a pure
function of its seed. Geometry works on ink coverage (0 = paper, 255 = ink) so rotations and
shears fill with paper, then the gray levels are applied once at the end.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from wordocr.render import Margins

TIERS = ("clean", "noisy", "hard", "tight", "train")
# Share of each tier in the "train" mixture: clean data alone would not teach robustness.
TRAIN_MIX = {"clean": 0.15, "noisy": 0.4, "hard": 0.45}


@dataclass(frozen=True)
class TierSettings:
    sizes: tuple[int, int]  # font size in pixels, drawn log-uniformly
    margin: tuple[float, float]  # each margin, as a fraction of the font size
    stretch: tuple[float, float] = (1.0, 1.0)  # horizontal scale: condensed to extended text
    rotate: float = 0.0  # max degrees either way
    blur: tuple[float, float] = (0.0, 0.0)  # gaussian radius as a fraction of the font size
    noise: tuple[float, float] = (0.0, 0.0)  # gaussian noise sigma, gray levels
    gray_levels: bool = False  # random paper and ink grays instead of white and black
    invert: float = 0.0  # probability of light ink on dark paper
    shear: float = 0.0  # max slant (x shift per unit height) either way
    low_res: float = 0.0  # probability of a down- and up-scaling round trip
    jpeg: float = 0.0  # probability of JPEG compression
    stroke: float = 0.0  # probability of thinner or bolder strokes (faded or bleeding ink)
    underline: float = 0.0
    rules: float = 0.0  # table rules and cell borders near the edges
    neighbours: float = 0.0  # ascenders/descenders of the lines above and below, cut by the crop
    specks: float = 0.0
    lighting: float = 0.0  # probability of a brightness gradient across the image


TIER_SETTINGS = {
    "clean": TierSettings(sizes=(16, 56), margin=(0.1, 0.8)),
    "tight": TierSettings(sizes=(16, 56), margin=(0.0, 0.0)),
    "noisy": TierSettings(
        sizes=(16, 56), margin=(0.1, 0.8), rotate=4.0, blur=(0.0, 0.04), noise=(0.0, 12.0),
        gray_levels=True, invert=0.15,
    ),
    "hard": TierSettings(
        sizes=(14, 64), margin=(0.05, 1.0), stretch=(0.85, 1.15), rotate=5.0, blur=(0.0, 0.05),
        noise=(0.0, 20.0), gray_levels=True, invert=0.2, shear=0.3, low_res=0.4, jpeg=0.5, stroke=0.25,
        underline=0.15, rules=0.25, neighbours=0.2, specks=0.2, lighting=0.3,
    ),
}  # fmt: skip
# Blur and low resolution are bounded by the letters' finest detail (stroke or counter width,
# see ``glyph_detail``): a gaussian radius up to MAX_BLUR_DETAIL times it, and a down-scaling
# that leaves it at least MIN_LOW_RES_DETAIL pixels wide. Beyond those a person cannot read it.
MAX_BLUR_DETAIL = 0.5
MIN_LOW_RES_DETAIL = 2.0
# Bolder or thinner strokes (a 3x3 max or min filter) take a pixel off each side of every gap or
# stroke: only letters whose median gap (bolder) or stroke (thinner) is at least
# MIN_STROKE_CHANGE_WIDTH pixels get them. Thinning a 2-pixel stroke erases the word; bolding
# small bold letters fills their counters.
MIN_STROKE_CHANGE_WIDTH = 4.0
# JPEG quality floor: JPEG_QUALITY_FLOOR minus JPEG_QUALITY_PER_PIXEL per pixel of detail (10-50).
JPEG_QUALITY_FLOOR = 60
JPEG_QUALITY_PER_PIXEL = 12
# What "train" adds to the tier it draws: wider size and margin ranges, condensed/extended text.
TRAIN_JITTER = {"sizes": (12, 72), "margin": (0.0, 1.5), "stretch": (0.7, 1.35)}


@dataclass(frozen=True)
class Layout:
    """How to draw a word before degrading it."""

    tier: str  # the concrete tier (for "train": the one drawn from the mixture)
    size: int  # font size, pixels
    margins: Margins
    stretch: float = 1.0  # horizontal scale applied to the drawn word


def settings_for(tier: str) -> TierSettings:
    if tier not in TIER_SETTINGS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {TIERS}")
    return TIER_SETTINGS[tier]


def sample_layout(tier: str, rng: np.random.Generator) -> Layout:
    """Pick the concrete tier, font size, margins and width scale for one sample."""
    if tier == "train":
        names = list(TRAIN_MIX)
        concrete = names[rng.choice(len(names), p=list(TRAIN_MIX.values()))]
        sizes, margin, stretch = TRAIN_JITTER["sizes"], TRAIN_JITTER["margin"], TRAIN_JITTER["stretch"]
    else:
        concrete = tier
        settings = settings_for(tier)
        sizes, margin, stretch = settings.sizes, settings.margin, settings.stretch
    size = round(float(np.exp(rng.uniform(np.log(sizes[0]), np.log(sizes[1])))))
    margins = tuple(int(v) for v in np.round(size * rng.uniform(*margin, size=4)))
    return Layout(concrete, size, margins, float(rng.uniform(*stretch)))  # type: ignore[arg-type]


def degrade(image: np.ndarray, layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Degrade a black-on-white rendering (uint8 [h, w]) as ``layout.tier`` says; uint8 gray out."""
    s = settings_for(layout.tier)
    size = layout.size
    ink = Image.fromarray(255 - image)  # coverage: geometry then fills with paper (0)

    if layout.stretch != 1.0:
        width = max(1, round(ink.width * layout.stretch))
        ink = ink.resize((width, ink.height), Image.Resampling.BILINEAR)
    if s.shear and rng.random() < 0.5:
        ink = _shear(ink, rng.uniform(-s.shear, s.shear))
    if s.rotate:
        ink = ink.rotate(rng.uniform(-s.rotate, s.rotate), Image.Resampling.BILINEAR, expand=True, fillcolor=0)
    if s.stroke and rng.random() < s.stroke:
        grow = rng.random() < 0.5
        if stroke_change_fits(np.asarray(ink), grow):
            ink = ink.filter(ImageFilter.MaxFilter(3) if grow else ImageFilter.MinFilter(3))

    detail = glyph_detail(np.asarray(ink))

    if s.underline and rng.random() < s.underline:
        _underline(ink, size, rng)
    if s.rules and rng.random() < s.rules:
        _rules(ink, size, rng)
    if s.neighbours and rng.random() < s.neighbours:
        _neighbour_lines(ink, size, rng)
    if s.specks and rng.random() < s.specks:
        _specks(ink, size, rng)

    low_res = bool(s.low_res) and rng.random() < s.low_res
    if low_res:
        ink = _low_res(ink, size, detail, rng)
    if s.blur[1] > 0 and not low_res:  # both at once leave nothing a person could read
        radius = blur_radius(size * rng.uniform(*s.blur), detail)
        if radius >= 0.3:
            ink = ink.filter(ImageFilter.GaussianBlur(radius))

    gray = _ink_to_gray(np.asarray(ink, dtype=np.float32), s, rng)
    if s.jpeg and rng.random() < s.jpeg:
        gray = _jpeg(gray, int(rng.integers(jpeg_min_quality(detail), 60)))
    return gray


def _shear(ink: Image.Image, slant: float) -> Image.Image:
    """Slant like an italic: positive ``slant`` leans the tops of letters to the right."""
    width = ink.width + int(abs(slant) * ink.height + 1)
    # PIL's affine maps each output (x, y) to the input point (x + slant * y - shift, y); the
    # shift keeps the slanted word inside the widened canvas.
    shift = slant * ink.height if slant > 0 else 0.0
    coeffs = (1, slant, -shift, 0, 1, 0)
    return ink.transform((width, ink.height), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR, fillcolor=0)


def _ink_box(ink: Image.Image) -> tuple[int, int, int, int]:
    return ink.getbbox() or (0, 0, ink.width, ink.height)


def _thickness(size: int, rng: np.random.Generator) -> int:
    return max(1, round(float(size * rng.uniform(0.03, 0.09))))


def _underline(ink: Image.Image, size: int, rng: np.random.Generator) -> None:
    left, _, right, bottom = _ink_box(ink)
    y = min(ink.height - 1, bottom + int(size * rng.uniform(-0.1, 0.12)))
    x0 = left - int(size * rng.uniform(0, 0.3))
    x1 = right + int(size * rng.uniform(0, 0.3))
    ImageDraw.Draw(ink).line([(x0, y), (x1, y)], fill=255, width=_thickness(size, rng))


def _rules(ink: Image.Image, size: int, rng: np.random.Generator) -> None:
    """A table rule above or below, or a cell border left or right, near the image edge."""
    draw = ImageDraw.Draw(ink)
    width = _thickness(size, rng)
    side = rng.integers(4)
    if side < 2:  # horizontal: top or bottom edge
        y = int(rng.uniform(0, 0.08) * ink.height)
        y = y if side == 0 else ink.height - 1 - y
        draw.line([(0, y), (ink.width, y)], fill=255, width=width)
    else:  # vertical: left or right edge
        x = int(rng.uniform(0, 0.05) * ink.width)
        x = x if side == 2 else ink.width - 1 - x
        draw.line([(x, 0), (x, ink.height)], fill=255, width=width)


def _neighbour_lines(ink: Image.Image, size: int, rng: np.random.Generator) -> None:
    """Strokes hanging in from the top or bottom edge, like the next line's letters cut by the crop."""
    draw = ImageDraw.Draw(ink)
    from_top = rng.random() < 0.5
    stroke = _thickness(size, rng)
    x = int(rng.uniform(0, 0.3) * size)
    while x < ink.width:
        reach = int(size * rng.uniform(0.05, 0.25))
        y0, y1 = (0, reach) if from_top else (ink.height - 1 - reach, ink.height - 1)
        if rng.random() < 0.5:
            draw.line([(x, y0), (x, y1)], fill=255, width=stroke)
        else:
            w = int(size * rng.uniform(0.2, 0.5))
            draw.ellipse([x, y0 - reach, x + w, y1 + reach] if from_top else [x, y0, x + w, y1 + 2 * reach],
                         outline=255, width=stroke)  # fmt: skip
        x += int(size * rng.uniform(0.3, 0.8))


def _specks(ink: Image.Image, size: int, rng: np.random.Generator) -> None:
    draw = ImageDraw.Draw(ink)
    for _ in range(int(rng.integers(3, 30))):
        x, y = rng.uniform(0, ink.width), rng.uniform(0, ink.height)
        r = size * rng.uniform(0.01, 0.05)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.integers(100, 256)))


def stroke_and_gap(coverage: np.ndarray) -> tuple[float, float]:
    """The median stroke width and the median width of the paper gaps between strokes
    (counters: the inside of an o, the gap in an n), in pixels, measured along the rows of
    ``coverage`` (0 paper, 255 ink). (0, 0) for an image without ink."""
    mask = coverage > 127
    if not mask.any():
        return 0.0, 0.0
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    changes = np.diff(padded, axis=1)
    rows, starts = np.nonzero(changes == 1)
    _, ends = np.nonzero(changes == -1)  # same row order as the starts: row-major scan
    strokes = ends - starts
    # Gaps between consecutive strokes of the same row (not the margins around the word).
    same_row = rows[1:] == rows[:-1]
    gaps = (starts[1:] - ends[:-1])[same_row]
    stroke = float(np.median(strokes))
    return stroke, float(np.median(gaps)) if gaps.size else 2 * stroke


def glyph_detail(coverage: np.ndarray) -> float:
    """The finest detail of the drawn letters that reading needs, in pixels: the median gap
    between strokes or twice the median stroke width, whichever is smaller (``stroke_and_gap``).

    Bold letters have narrow counters, light ones thin strokes: either one is what blur and
    low resolution erase first, so both are bounded by it rather than by the font size.
    """
    stroke, gap = stroke_and_gap(coverage)
    if not stroke:
        return 1.0
    # A thin stroke survives more blur than a narrow gap does (the contrast stretch in
    # preprocessing brings a faint stroke back; nothing brings back a filled-in counter).
    return max(1.0, min(gap, 2 * stroke))


def stroke_change_fits(coverage: np.ndarray, grow: bool) -> bool:
    """Whether the letters in ``coverage`` can be made bolder (``grow``) or thinner by a pixel on
    each side and still be read: see MIN_STROKE_CHANGE_WIDTH."""
    stroke, gap = stroke_and_gap(coverage)
    return (gap if grow else stroke) >= MIN_STROKE_CHANGE_WIDTH


def blur_radius(radius: float, detail: float) -> float:
    """``radius`` capped at MAX_BLUR_DETAIL times the glyph detail: blurred, never a blob."""
    return min(radius, MAX_BLUR_DETAIL * detail)


def low_res_factor(target_size: float, size: int, detail: float) -> float:
    """The down-scaling factor for a word drawn at ``size`` as if captured at ``target_size``,
    but never so small that the glyph detail shrinks under MIN_LOW_RES_DETAIL pixels."""
    return min(1.0, max(target_size / size, MIN_LOW_RES_DETAIL / detail))


def jpeg_min_quality(detail: float) -> int:
    """The lowest JPEG quality for letters whose detail is ``detail`` pixels: 8x8 blocks at
    quality 10 wipe out detail of a pixel or two, so small letters get a higher floor."""
    return int(np.clip(round(JPEG_QUALITY_FLOOR - JPEG_QUALITY_PER_PIXEL * detail), 10, 50))


def _low_res(ink: Image.Image, size: int, detail: float, rng: np.random.Generator) -> Image.Image:
    """Down- and up-scale as if the word had been captured at 8-20 pixels font size (or larger,
    if its letters' detail would not survive that)."""
    factor = low_res_factor(rng.uniform(8, 20), size, detail)
    small = (max(1, round(ink.width * factor)), max(1, round(ink.height * factor)))
    up = Image.Resampling.NEAREST if rng.random() < 0.3 else Image.Resampling.BILINEAR
    return ink.resize(small, Image.Resampling.BOX).resize(ink.size, up)


def _ink_to_gray(coverage: np.ndarray, s: TierSettings, rng: np.random.Generator) -> np.ndarray:
    paper, ink = 255.0, 0.0
    if s.gray_levels:
        paper = rng.uniform(150, 255)
        ink = rng.uniform(0, paper - 100)
    if s.invert and rng.random() < s.invert:
        paper, ink = 255.0 - paper, 255.0 - ink
    gray = paper + (ink - paper) * (coverage / 255.0)
    if s.lighting and rng.random() < s.lighting:
        h, w = gray.shape
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * np.linspace(-1, 1, w)[None, :] + np.sin(angle) * np.linspace(-1, 1, h)[:, None]
        gray = gray + rng.uniform(5, 25) * ramp.astype(np.float32)
    if s.noise[1] > 0:
        # Noise stays below a sixth of the ink contrast: beyond that a person cannot read it either.
        sigma = min(rng.uniform(*s.noise), abs(paper - ink) / 6)
        if sigma >= 1.0:
            gray = gray + rng.standard_normal(gray.shape, dtype=np.float32) * sigma
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8)


def _jpeg(gray: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"))
