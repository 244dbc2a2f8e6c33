"""Finding the word's box (word_finder, word_box): past table rules, cell borders, specks and
cut-off neighbouring lines, without cutting the word's own strokes and dots."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.support.word_images import mean_difference, on_page, train_face
from wordocr.config import DEFAULT_INPUT_SPEC
from wordocr.fonts import face_by_name
from wordocr.preprocess import preprocess
from wordocr.render import render_word
from wordocr.word_box import word_box_in_mask
from wordocr.word_finder import find_word

SPEC = DEFAULT_INPUT_SPEC


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("word", ["teg", "aacxpbsejt", "ox", "i"])
def test_a_cell_border_beside_the_word_does_not_shrink_it(word, side):
    page = on_page(render_word(word, train_face(), 32, (0, 0, 0, 0)))
    ruled = page.copy()
    x = 20 if side == "left" else page.shape[1] - 22
    ruled[:, x : x + 3] = 0  # a full-height rule, 40 px from the word
    clean, out = preprocess(page), preprocess(ruled)
    assert mean_difference(clean, out) < 2
    rows = np.flatnonzero((out < 128).any(axis=1))
    assert rows[-1] - rows[0] >= SPEC.height - 8  # the word fills the height, not a rule-tall box


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("word", ["inconvertibly", "kelvin", "ptarmigan"])
def test_a_rule_touching_the_first_or_last_letter_is_dropped(word, side):
    # No paper between rule and letter (blur, a tight cell): nothing to split at, still a rule.
    glyphs = render_word(word, train_face(), 32, (0, 0, 0, 0))
    page = on_page(glyphs)
    ruled = page.copy()
    ink = np.flatnonzero((glyphs < 128).any(axis=0))
    x = 60 + (ink[0] - 3 if side == "left" else ink[-1] + 1)
    ruled[:, x : x + 3] = 0
    clean, out = preprocess(page), preprocess(ruled)
    assert mean_difference(clean, out) < 6
    rows = np.flatnonzero((out < 128).any(axis=1))
    assert rows[-1] - rows[0] >= SPEC.height - 8  # the word fills the height, not a rule-tall box


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_rule_in_a_crop_tight_above_and_below_is_dropped(side):
    # 2 px of paper above and below: less than the reach past the text a rule is looked for.
    glyphs = render_word("dendromecon", train_face(), 32, (0, 0, 0, 0))
    page = on_page(glyphs, top=2, bottom=2)
    ruled = page.copy()
    x = 54 if side == "left" else 60 + glyphs.shape[1] + 4
    ruled[:, x : x + 2] = 0  # 4-6 px from the word, into both edges
    assert mean_difference(preprocess(page), preprocess(ruled)) < 2


def test_a_full_width_rule_far_above_is_dropped_and_an_underline_kept():
    word = render_word("dentalism", train_face(), 32, (0, 0, 0, 0))
    page = on_page(word)
    ruled = page.copy()
    ruled[10:13, :] = 0  # a table rule far above
    assert mean_difference(preprocess(page), preprocess(ruled)) < 2
    underlined = page.copy()
    underlined[60 + word.shape[0] + 2 : 60 + word.shape[0] + 4, 55 : page.shape[1] - 55] = 0
    out = preprocess(underlined)
    assert out[OUTPUT_ROWS_BOTTOM].min() < 128  # the underline is in the box, at its bottom


OUTPUT_ROWS_BOTTOM = slice(SPEC.height - 5, SPEC.height - 2)


def test_specks_around_the_word_do_not_shrink_it():
    page = on_page(render_word("afoot", train_face(), 32, (0, 0, 0, 0)))
    specked = page.copy()
    rng = np.random.default_rng(0)
    for _ in range(25):  # small dots scattered above and below the word
        y = int(rng.choice([rng.integers(2, 40), rng.integers(page.shape[0] - 40, page.shape[0] - 2)]))
        x = int(rng.integers(2, page.shape[1] - 3))
        specked[y : y + 2, x : x + 2] = 0
    assert mean_difference(preprocess(page), preprocess(specked)) < 3


@pytest.mark.parametrize("word", ["mini", "ij", "a", "i", "ox", "lapidify", "llama"])
def test_the_word_itself_is_never_cut(word):
    rendered = render_word(word, train_face("eb-garamond"), 40, (0, 0, 0, 0))
    out = preprocess(on_page(rendered, 5, 5, 5, 5))
    # Cut letters would leave the crop's ink touching an edge of the output's inner box.
    inner = out[2:-2, 2:-2] < 128
    rows = np.flatnonzero(inner.any(axis=1))
    assert rows[0] <= 1 and rows[-1] >= inner.shape[0] - 2  # the full height is used
    tight = preprocess(rendered)  # no margins at all: nothing to clip
    assert mean_difference(out, tight) < 6



@pytest.mark.parametrize("edge", ["top", "bottom"])
def test_strokes_of_a_cut_off_neighbouring_line_are_dropped(edge):
    # The next line's descenders hang in from the crop's top edge and end 4 px above the word:
    # too close for an empty band of rows to part them from it. (Flipped: ascenders from below.)
    glyphs = render_word("dentalism", train_face(), 32, (0, 0, 0, 0))
    page = on_page(glyphs, top=12, bottom=12)
    hung = Image.fromarray(page if edge == "top" else page[::-1].copy())
    draw = ImageDraw.Draw(hung)
    for x in range(62, 60 + glyphs.shape[1], 24):
        draw.line([(x, 0), (x, 7)], fill=0, width=3)  # a stem
        draw.ellipse([x + 6, -9, x + 18, 7], outline=0, width=2)  # a loop's lower half
    hung = np.asarray(hung) if edge == "top" else np.asarray(hung)[::-1]
    assert mean_difference(preprocess(page), preprocess(hung)) < 3


def test_a_cell_border_as_thick_as_small_text_strokes_is_dropped():
    # Small text: after smoothing, a 2 px border is wider than a quarter of the text height.
    page = on_page(render_word("adduction", train_face(), 18, (0, 0, 0, 0)), top=8, bottom=8, left=8, right=8)
    ruled = page.copy()
    ruled[:, 2:4] = 0
    assert mean_difference(preprocess(page), preprocess(ruled)) < 2


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_cell_border_with_a_speck_on_its_outer_side_is_dropped(side):
    glyphs = render_word("gasometrical", train_face(), 32, (0, 0, 0, 0))
    page = on_page(glyphs, left=20, right=20)
    ruled = page.copy()
    x = 10 if side == "left" else page.shape[1] - 13
    ruled[:, x : x + 3] = 0
    speck = x - 3 if side == "left" else x + 3
    ruled[75:79, speck : speck + 3] = 0  # a speck touching the border, outside the cell
    assert mean_difference(preprocess(page), preprocess(ruled)) < 2


@pytest.mark.parametrize("word", ["hillside", "knotted"])
def test_faint_word_above_a_dark_underline_is_found_whole(word):
    # The underline sets the image's contrast: at a threshold from it, the faint letters' thin
    # strokes are lost and the box shrinks to a part of the word.
    glyphs = render_word(word, train_face(), 32, (0, 0, 0, 0)).astype(np.float32)
    faint = np.pad((200 - (255 - glyphs) / 255 * 50).astype(np.uint8), 40, constant_values=200)  # ink 150
    underlined = faint.copy()
    underlined[-12:-8, 5:-5] = 0  # black, far below the word: clutter, not the word's underline
    assert mean_difference(preprocess(faint), preprocess(underlined)) < 2


@pytest.mark.parametrize("family", ["karla", "roboto", "lato"])
@pytest.mark.parametrize("word", ["lumbermen", "loom"])
def test_an_ascender_poking_below_the_baseline_is_not_taken_for_a_rule(word, family):
    # Noise or blur can leave a tall first letter's stem a row or two longer than the text band;
    # it still stops there, where a rule runs on, so the l must stay.
    glyphs = render_word(word, train_face(family), 32, (0, 0, 0, 0))
    ink = glyphs < 128
    first = int(np.flatnonzero(ink.any(axis=0))[0])
    stem = first + int(np.argmin(ink[:, first:].any(axis=0)))  # the l's columns end at a gap
    foot = int(np.flatnonzero(ink[:, first:stem].any(axis=1))[-1]) + 1
    page = on_page(glyphs, 20, 20, 20, 20)
    page[20 + foot : 20 + foot + 2, 20 + first : 20 + stem] = 0
    out = preprocess(page) < 128
    left = int(np.flatnonzero(out.any(axis=0))[0])
    assert out[2:6, left : left + 4].any()  # the first ink is the l's top, not an o or a u



@pytest.mark.parametrize(
    ("word", "face"),
    [
        ("yahwism", "eb-garamond/EBGaramond-Italic[wght].ttf@wght=800"),
        ("yahwism", "playfair-display/PlayfairDisplay-Italic[wght].ttf@wght=800"),
    ],
)
def test_a_tail_swinging_back_under_the_word_stays_in_the_box(word, face):
    # An italic y's tail reaches left of the word's first stroke, below the x-height rows that
    # set the box's ends: the box must still hold all of the word's ink.
    glyphs = render_word(word, face_by_name(face), 32, (8, 8, 8, 8)).astype(np.float32)
    faded = (255 - (255 - glyphs) * 133 / 255).astype(np.uint8)  # gray ink, as the clean tier draws
    top, bottom, left, right = find_word(faded).box
    dark = faded < 200
    assert dark[top:bottom, left:right].sum() >= dark.sum() - 2


@pytest.mark.parametrize(
    "face", ["lato/Lato-Bold.ttf", "bitter/Bitter[wght].ttf@wght=800", "lora/Lora[wght].ttf@wght=700"]
)
def test_the_dots_of_a_bold_word_cropped_flush_are_kept(face):
    # Bold i and j dots touching the top edge are as big as a cut-off neighbouring line's
    # strokes would be; they are dots all the same.
    glyphs = render_word("ij", face_by_name(face), 40, (0, 0, 0, 0))
    assert mean_difference(preprocess(glyphs), preprocess(on_page(glyphs, 5, 5, 5, 5))) < 6


@pytest.mark.parametrize(
    ("word", "face", "size"),
    [("all", "libre-baskerville/LibreBaskerville[wght].ttf@wght=400", 30), ("ill", "lora/Lora[wght].ttf@wght=400", 32)],
)
def test_a_stem_reaching_both_edges_of_a_flush_crop_is_a_letter(word, face, size):
    # Cropped flush, an l spans the image's height as a cell border would; the rest of the word
    # spanning it too tells them apart.
    flush = render_word(word, face_by_name(face), size, (0, 0, 0, 0))
    assert mean_difference(preprocess(flush), preprocess(on_page(flush, 20, 20, 20, 20))) < 4



@pytest.mark.parametrize(
    ("word", "face", "size"),
    [
        ("jackanapes", "inter/Inter[opsz,wght].ttf@wght=800", 52),
        ("jackanapes", "inter/Inter[opsz,wght].ttf@wght=400", 24),
        ("jackanapes", "inter/Inter[opsz,wght].ttf@wght=300", 24),
        ("fjord", "inter/Inter[opsz,wght].ttf@wght=400", 40),  # the f went with the j
    ],
)
def test_a_j_at_the_edge_of_a_flush_crop_is_a_letter(word, face, size):
    # The mean closes the pixel or two of paper between a j's dot and its stem, and the stem then
    # runs from edge to edge past the text like a cell border; unsmoothed, the gap is there.
    flush = render_word(word, face_by_name(face), size, (0, 0, 0, 0))
    _, _, left, right = find_word(flush).box
    columns = np.flatnonzero((flush < 128).any(axis=0))
    assert left <= columns[0] + 2 and right >= columns[-1] - 1  # the j is in (it was cut off)
    assert mean_difference(preprocess(flush), preprocess(on_page(flush, 20, 20, 20, 20))) < 4


@pytest.mark.parametrize(
    ("word", "face", "size"),
    [
        ("in", "roboto/Roboto[wdth,wght].ttf@wght=300", 20),
        ("in", "lato/Lato-Light.ttf", 14),
        ("imaginate", "noto-sans/NotoSans[wdth,wght].ttf@wght=300", 16),
        ("imaginate", "open-sans/OpenSans-Italic[wdth,wght].ttf@wght=300", 16),
    ],
)
def test_the_dot_of_a_small_light_i_is_kept(word, face, size):
    # A one- or two-pixel dot fades below the ink threshold in the 3x3 mean, and at half contrast
    # it is a lone pixel; the crop then began below it and the i read as a dotless stroke.
    image = render_word(word, face_by_name(face), size, (8, 8, 8, 8))
    top = find_word(image).box[0]
    assert top <= np.flatnonzero((image < 128).any(axis=1))[0]


@pytest.mark.parametrize("above", ["hold", "glyph"])
def test_a_cut_off_line_above_is_not_followed_into_the_crop(above):
    # Above a word on clean paper, unsmoothed ink is followed up to an i's dot, but not where
    # ink reaches the top edge: the faint strokes of a line cut off a pixel above would join in.
    face = face_by_name("noto-sans/NotoSans[wdth,wght].ttf@wght=300")
    word = render_word("imaginate", face, 16, (8, 0, 8, 8))
    line = render_word(above, face, 16, (0, 0, 0, 0))
    cut = line[line.shape[0] * 2 // 3 :, : word.shape[1]]  # its strokes hang in from the edge
    page = np.full((cut.shape[0] + 1 + word.shape[0], word.shape[1]), 255, dtype=np.uint8)
    page[: cut.shape[0], : cut.shape[1]] = cut
    page[cut.shape[0] + 1 :] = word
    top = find_word(page).box[0]
    assert top == cut.shape[0] + 1


def _letters(mask: np.ndarray, top: int, bottom: int, left: int, right: int) -> None:
    """Stems 2 px wide, 3 px of paper apart, and an x-height band joining them at the top."""
    for x in range(left, right - 1, 5):
        mask[top:bottom, x : x + 2] = True
    mask[top : top + 2, left:right] = True


def test_the_box_in_a_mask_holds_the_letters_and_leaves_out_a_far_rule_and_specks():
    mask = np.zeros((60, 300), bool)
    _letters(mask, 20, 40, 50, 150)
    mask[:, 280:283] = True  # a cell border, far to the right
    mask[3:5, 200:202] = True  # a speck above and to the side
    assert word_box_in_mask(mask) == (20, 40, 50, 150)


def test_an_empty_mask_has_no_box():
    assert word_box_in_mask(np.zeros((32, 100), bool)) is None


def _follow_strokes_as_arrays(mask, row, step, gap, reach):
    """The rule ``word_box._follow_strokes`` compiles, stated with whole-row numpy operations."""
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


@pytest.mark.parametrize("seed", range(4))
def test_following_strokes_compiled_matches_the_rule_stated_with_arrays(seed):
    from wordocr.word_box import _follow_strokes

    rng = np.random.default_rng(seed)
    checked = set()
    for _ in range(300):
        height, width = int(rng.integers(2, 40)), int(rng.integers(1, 60))
        mask = rng.random((height, width)) < rng.uniform(0.02, 0.5)
        left = int(rng.integers(0, width))
        view = mask[:, left:]  # the box's columns: a strided view, as word_box passes it
        row, step = int(rng.integers(0, height)), int(rng.choice([-1, 1]))
        gap, reach = int(rng.integers(1, 6)), int(rng.integers(0, height + 2))
        expected = _follow_strokes_as_arrays(view, row, step, gap, reach)
        assert _follow_strokes(view, row, step, gap, reach) == expected
        checked.add(expected != row)
    assert checked == {True, False}  # both outcomes met: strokes followed, and none to follow
