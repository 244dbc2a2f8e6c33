import numpy as np
import pytest

from wordocr import degrade
from wordocr.fonts import font_faces
from wordocr.render import render_word


def _face(family: str, style: str):
    return next(f for f in font_faces("train") if f.family == family and style in f.name and not f.italic)


@pytest.mark.parametrize(
    ("family", "style"), [("arvo", "Bold"), ("karla", "wght=400"), ("lato", "Black"), ("lato", "Regular")]
)
def test_glyph_detail_grows_with_font_size(family, style):
    face = _face(family, style)
    small = degrade.glyph_detail(255 - render_word("sou lapidify", face, 16))
    large = degrade.glyph_detail(255 - render_word("sou lapidify", face, 64))
    assert 1.0 <= small < large <= 64 * 0.3
    assert large / small > 2


def test_blur_and_low_resolution_are_bounded_by_the_glyph_detail():
    assert degrade.blur_radius(5.0, detail=2.0) == pytest.approx(degrade.MAX_BLUR_DETAIL * 2.0)
    assert degrade.blur_radius(0.5, detail=4.0) == 0.5
    # A size-40 font asked to look like 8 px: fine detail keeps it at least MIN_LOW_RES_DETAIL wide.
    factor = degrade.low_res_factor(8, 40, detail=2.0)
    assert factor * 2.0 >= degrade.MIN_LOW_RES_DETAIL - 1e-9 and factor > 8 / 40
    assert degrade.low_res_factor(8, 40, detail=20.0) == pytest.approx(8 / 40)
    assert degrade.jpeg_min_quality(1.0) > degrade.jpeg_min_quality(6.0) >= 10


def test_hard_tier_blur_never_fills_in_the_counters():
    """Bold small text, at the tier's strongest blur: the inside of the o stays lighter than its ring."""
    face = _face("arvo", "Bold")
    layout = degrade.Layout("hard", 22, (10, 10, 10, 10))
    image = render_word("o", face, 22, layout.margins)
    detail = degrade.glyph_detail(255 - image)
    radius = degrade.blur_radius(22 * degrade.TIER_SETTINGS["hard"].blur[1], detail)
    from PIL import Image, ImageFilter

    blurred = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)), np.float32)
    row = blurred[blurred.shape[0] // 2 + 2]  # a row through the o's counter
    ink = np.flatnonzero(row < 128)
    assert ink.size
    inside = row[ink[0] : ink[-1] + 1]
    assert inside.max() - inside.min() > 60  # the counter is still visible


def test_tight_tier_crops_flush_with_the_ink():
    rng = np.random.default_rng(3)
    for word in ("minimum", "lapidify", "ox"):
        layout = degrade.sample_layout("tight", rng)
        assert layout.margins == (0, 0, 0, 0) and layout.tier == "tight"
        image = degrade.degrade(render_word(word, _face("lato", "Black"), layout.size, layout.margins), layout, rng)
        ink = image < 128
        rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        # The font's box may leave a pixel or two of anti-aliasing or side bearing at an edge.
        assert rows[0] <= 2 and rows[-1] >= ink.shape[0] - 3
        assert columns[0] <= 2 and columns[-1] >= ink.shape[1] - 3


@pytest.mark.parametrize(
    ("family", "style", "grow"), [("karla", "wght=300", False), ("lato", "Regular", False), ("lato", "Black", True)]
)
def test_stroke_weight_changes_only_letters_that_survive_them(family, style, grow):
    """Thinning takes a pixel off each side of a stroke, bolding one off each side of a gap: a
    light face at 16 px would vanish, a black one would fill its counters; at 64 px both read."""
    face = _face(family, style)
    assert not degrade.stroke_change_fits(255 - render_word("minimum", face, 16), grow)
    assert degrade.stroke_change_fits(255 - render_word("minimum", face, 64), grow)


def test_hard_tier_thinning_never_erases_small_light_words(monkeypatch):
    """Every hard-tier draw thins (or bolds) its strokes where it fits: a 14-px light word keeps its ink."""
    hard = degrade.TIER_SETTINGS["hard"]
    only_stroke = degrade.TierSettings(sizes=hard.sizes, margin=hard.margin, stroke=1.0)
    monkeypatch.setitem(degrade.TIER_SETTINGS, "hard", only_stroke)
    face = _face("karla", "wght=300")
    layout = degrade.Layout("hard", 14, (4, 4, 4, 4))
    image = render_word("minimum", face, 14, layout.margins)
    rng = np.random.default_rng(5)
    for _ in range(6):
        out = degrade.degrade(image, layout, rng)
        assert (out < 128).sum() >= 0.9 * (image < 128).sum()
