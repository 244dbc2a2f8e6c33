"""preprocess: any image of a word to the model's input (gray, polarity, crop, stretch, scale, pad)."""

import numpy as np
from PIL import Image

from tests.support.word_images import mean_difference, train_face
from wordocr.config import DEFAULT_INPUT_SPEC, InputSpec
from wordocr.preprocess import blank_image, preprocess
from wordocr.render import render_request_word, render_word

SPEC = DEFAULT_INPUT_SPEC


def test_output_is_model_input_shape_with_white_background():
    out = preprocess(render_request_word("shape"))
    assert out.shape == (SPEC.height, SPEC.width) and out.dtype == np.uint8
    assert out.min() == 0 and out[:, -20:].min() == 255  # black ink, padded white on the right


def test_small_word_in_huge_margin_reads_like_large_tight_word():
    face = train_face()
    tight = render_word("geometry", face, 64, (1, 1, 1, 1))
    small = render_word("geometry", face, 32, (0, 0, 0, 0))
    huge = np.full((700, 1100), 255, np.uint8)
    huge[400 : 400 + small.shape[0], 650 : 650 + small.shape[1]] = small
    a, b = preprocess(tight), preprocess(huge)
    other = preprocess(render_word("bookkeeper", face, 64, (1, 1, 1, 1)))
    assert mean_difference(a, b) < 15  # what rasterising at 32 vs 64 px alone costs is about 10
    assert mean_difference(a, b) * 3 < mean_difference(a, other)


def test_inverted_polarity_is_normalised():
    word = render_request_word("polarity")
    assert mean_difference(preprocess(word), preprocess(255 - word)) < 3


def test_gray_levels_are_stretched_to_black_on_white():
    word = render_request_word("faded").astype(np.float32)
    faded = (150 + (word / 255) * 60).astype(np.uint8)  # ink 150, paper 210
    assert mean_difference(preprocess(render_request_word("faded")), preprocess(faded)) < 6


def test_colour_and_transparent_inputs_are_read():
    word = render_request_word("colour")
    rgb = np.stack([word, word, word], axis=-1)
    # Black ink on a transparent background: what many tools export.
    rgba = np.zeros((*word.shape, 4), np.uint8)
    rgba[..., 3] = 255 - word
    expected = preprocess(word)
    assert mean_difference(expected, preprocess(rgb)) < 2
    assert mean_difference(expected, preprocess(Image.fromarray(rgba, "RGBA"))) < 4
    assert mean_difference(expected, preprocess(word.astype(np.float32) / 255)) < 2


def test_blank_and_noise_only_images_give_a_blank_input():
    blank = np.full((SPEC.height, SPEC.width), 255, np.uint8)
    assert np.array_equal(blank_image(), blank)
    assert np.array_equal(preprocess(np.full((50, 80), 255, np.uint8)), blank)
    assert np.array_equal(preprocess(np.zeros((50, 80), np.uint8)), blank)
    assert np.array_equal(preprocess(np.zeros((0, 0), np.uint8)), blank)
    noise = np.clip(200 + np.random.default_rng(0).normal(0, 8, (120, 300)), 0, 255).astype(np.uint8)
    assert np.array_equal(preprocess(noise), blank)


def test_far_clutter_is_ignored():
    word = render_request_word("clutter")
    canvas = np.full((word.shape[0], word.shape[1] + 300), 255, np.uint8)
    canvas[:, : word.shape[1]] = word
    canvas[30:34, -20:-10] = 0  # a speck far to the right
    assert mean_difference(preprocess(word), preprocess(canvas)) < 2


def test_too_wide_words_are_squashed_to_fit():
    out = preprocess(np.pad(render_request_word("internationalisation" * 2), 5, constant_values=255))
    assert out.shape == (SPEC.height, SPEC.width)
    assert out[:, SPEC.width - 6 : SPEC.width - 2].min() < 128  # ink reaches the right margin


def test_other_input_specs_are_honoured():
    spec = InputSpec(height=48, width=256)
    assert preprocess(render_request_word("spec"), spec).shape == (48, 256)


def _ink_width(image: np.ndarray) -> int:
    columns = np.flatnonzero(image.min(axis=0) < 128)
    return int(columns[-1] - columns[0] + 1)


def test_narrow_words_are_widened_up_to_max_widen_and_never_past_the_input():
    word = render_request_word("ill")
    kept, widened = preprocess(word, InputSpec(max_widen=1.0)), preprocess(word, InputSpec(max_widen=2.0))
    assert 1.8 < _ink_width(widened) / _ink_width(kept) <= 2.05
    long_word = render_request_word("characteristically")
    assert _ink_width(preprocess(long_word, InputSpec(max_widen=2.0))) <= SPEC.width - 4


def test_an_input_spec_without_max_widen_keeps_the_aspect_ratio():
    recorded = {"height": 32, "width": 192, "width_downsample": 4, "max_word_length": 16}
    spec = InputSpec.from_dict(recorded)
    assert spec.max_widen == 1.0 and spec == InputSpec(max_widen=1.0)
    assert InputSpec.from_dict({**recorded, "max_widen": 1.5}).max_widen == 1.5
