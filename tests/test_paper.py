"""The paper under a word: its level and polarity, uneven lighting taken out, ink stretched to black."""

import numpy as np
import pytest

from tests.support.word_images import mean_difference, on_page, train_face
from wordocr.fonts import face_by_name
from wordocr.paper import fit_lighting, measure_paper, stretch_table
from wordocr.preprocess import preprocess
from wordocr.render import render_word
from wordocr.word_finder import find_word


def test_uneven_lighting_does_not_hide_faint_ink():
    word = render_word("secrecy", train_face(), 24, (20, 20, 20, 20)).astype(np.float32)
    faint = 200 - (255 - word) / 255 * 60  # ink 140 on paper 200
    ramp = np.linspace(-35, 35, word.shape[1])[None, :]
    lit = np.clip(faint + ramp, 0, 255).astype(np.uint8)
    out = preprocess(lit)
    assert out.min() < 64  # not blank
    assert mean_difference(out, preprocess(word.astype(np.uint8))) < 12



@pytest.mark.parametrize(
    ("word", "face", "size"),
    [
        ("minimum", "lato/Lato-Black.ttf", 24),  # ink covers ~40 %: the median is not the paper
        ("ride", "jost/Jost[wght].ttf@wght=800", 26),  # x-height rows fill the width: not rules
        ("communion", "fira-sans/FiraSans-ExtraBold.ttf", 24),
        ("row", "fira-sans/FiraSans-Black.ttf", 40),  # ink covers 64 %: more ink than paper
        ("seepage", "barlow-condensed/BarlowCondensed-Black.ttf", 40),
        ("ballistics", "jost/Jost[wght].ttf@wght=800", 40),  # full-height b stem: not a border
    ],
)
def test_a_heavy_word_cropped_flush_reads_as_with_margins(word, face, size):
    flush = render_word(word, face_by_name(face), size, (0, 0, 0, 0))
    expected = preprocess(on_page(flush, 20, 20, 20, 20))
    assert mean_difference(preprocess(flush), expected) < 4
    assert mean_difference(preprocess(255 - flush), expected) < 4  # light ink on dark paper, flush too



@pytest.mark.parametrize(
    ("word", "face"),
    [
        ("SHEARER", "encode-sans/EncodeSans[wdth,wght].ttf@wght=800"),
        ("DEBRIEF", "fira-code/FiraCode[wght].ttf@wght=600"),
        ("WELLHEAD", "fira-code/FiraCode[wght].ttf@wght=700"),
        ("SPLUTTERER", "roboto-condensed/RobotoCondensed[wght].ttf@wght=800"),
        ("TERMLESS", "roboto-mono/RobotoMono-Italic[wght].ttf@wght=700"),
    ],
)
@pytest.mark.parametrize("size", [24, 40])
def test_heavy_capitals_cropped_flush_keep_their_polarity(word, face, size):
    # Their flat tops and bases make the crop's top and bottom rows mostly ink, so a polarity read
    # from the whole border came out inverted (and the word often lost): the sides decide.
    flush = render_word(word, face_by_name(face), size, (0, 0, 0, 0))
    dark, light = find_word(flush), find_word(255 - flush)
    assert dark is not None and not dark.inverted
    assert light is not None and light.inverted
    expected = preprocess(on_page(flush, 20, 20, 20, 20))
    assert mean_difference(preprocess(flush), expected) < 4
    assert mean_difference(preprocess(255 - flush), expected) < 4


@pytest.mark.parametrize(
    ("word", "face", "size"),
    [
        ("jig", "inter/Inter[opsz,wght].ttf@wght=800", 24),  # found no ink at all before
        ("ijk", "inter/Inter[opsz,wght].ttf@wght=600", 20),
        ("fjord", "inter/Inter[opsz,wght].ttf@wght=800", 16),
        ("dub", "jost/Jost-Italic[wght].ttf@wght=600", 18),  # a lighting gradient was fitted to it
    ],
)
def test_a_small_dense_word_cropped_flush_is_found_whole(word, face, size):
    # The 3x3 mean leaves hardly a pixel of such a crop pure paper: smoothed, its paper looks
    # darker and noisy. Unsmoothed, the paper is one level.
    flush = render_word(word, face_by_name(face), size, (0, 0, 0, 0))
    found = find_word(flush)
    assert found is not None
    assert found.paper >= 250 and found.lighting is None
    top, bottom, left, right = found.box
    dark = flush < 128
    assert dark[top:bottom, left:right].sum() >= dark.sum() - 2  # a lone corner pixel may go


def _page_with_ink(paper: int = 200, ink: int = 60) -> np.ndarray:
    page = np.full((40, 200), paper, np.uint8)
    page[15:25, 50:150:4] = ink  # thin strokes: a tenth of the page
    return page


def test_the_paper_level_polarity_contrast_and_noise_are_read_from_the_gray_levels():
    assert measure_paper(_page_with_ink()) == (200, False, 140, 0)
    assert measure_paper(255 - _page_with_ink()) == (55, True, 140, 0)


def test_a_lighting_ramp_is_fitted_and_taken_out_and_even_paper_has_none():
    page = _page_with_ink().astype(np.float32) + np.linspace(-40, 40, 200)[None, :]
    page = page.astype(np.uint8)
    lighting = fit_lighting(page, inverted=False, factor=1)
    assert lighting is not None
    paper = lighting.flatten(page, 0, 0, 1)[:10]  # rows above the strokes
    assert int(paper.max()) - int(paper.min()) <= 2
    assert fit_lighting(_page_with_ink(), inverted=False, factor=1) is None


@pytest.mark.parametrize("inverted", [False, True])
def test_the_stretch_maps_ink_to_black_and_paper_to_white(inverted):
    crop = _page_with_ink(paper=200, ink=100)
    crop = 255 - crop if inverted else crop
    paper, ink = (55, 155) if inverted else (200, 100)
    table = stretch_table(crop, inverted, paper)
    assert table[ink] == 0 and table[paper] == 255
    assert table[(ink + paper) // 2] in range(120, 136)
