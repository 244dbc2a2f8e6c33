"""The second look: stroke-weight variants of an image, and when the recognizer takes their reading.

The recognizer here reads scripted logits instead of running a network (the choice among
readings is what is tested; the network's part is covered in test_recognizer.py).
"""

import numpy as np
import pytest

from tests.support.tiny_data import TINY_SPEC
from wordocr.alphabet import Alphabet
from wordocr.recognizer import Reader, Recognizer
from wordocr.second_look import SECOND_LOOK_BELOW, heavier_strokes, lighter_strokes, variants


def test_lighter_strokes_fade_partial_ink_and_keep_solid_ink_and_paper():
    image = np.array([[[0, 64, 128, 192, 255]]], dtype=np.uint8)
    out = lighter_strokes(image)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert out[0, 0, 0] == 0 and out[0, 0, 4] == 255
    # ink 127 of 255 -> 127 * 127 / 255 = 63: the pixel goes from 128 to 192.
    assert out[0, 0, 2] == 192
    assert all(out[0, 0, i] > image[0, 0, i] for i in (1, 2, 3))


def test_heavier_strokes_grow_ink_by_one_pixel_and_nothing_from_the_border():
    image = np.full((1, 7, 9), 255, dtype=np.uint8)
    image[0, 3, 4] = 10
    image[0, 0, 0] = 100  # a corner pixel: grows inward only
    out = heavier_strokes(image)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert (out[0, 2:5, 3:6] == 10).all()
    assert (out[0, :2, :2] == 100).all()
    untouched = np.ones_like(out[0], dtype=bool)
    untouched[2:5, 3:6] = False
    untouched[:2, :2] = False
    assert (out[0][untouched] == 255).all()


def test_variants_stack_lighter_then_heavier():
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 12), dtype=np.uint8)
    out = variants(images)
    np.testing.assert_array_equal(out[:3], lighter_strokes(images))
    np.testing.assert_array_equal(out[3:], heavier_strokes(images))


ALPHABET = Alphabet()


def spelled(word: str, sure: float = 12.0) -> np.ndarray:
    """Logits [T, C] that spell ``word`` with one letter per step, blanks around and between."""
    logits = np.zeros((TINY_SPEC.time_steps, ALPHABET.num_classes), dtype=np.float32)
    logits[:, ALPHABET.blank_index] = sure
    for step, index in zip(range(1, 2 * len(word), 2), ALPHABET.encode(word), strict=False):
        logits[step] = 0.0
        logits[step, index] = sure
    return logits


def torn(first: str, second: str) -> np.ndarray:
    """Logits that cannot decide between two words of the same length (each near 50 %)."""
    logits = spelled(first) + spelled(second)
    return logits / 2


class ScriptedRecognizer(Recognizer):
    """The recognizer's reading logic over logits a script gives per image (no network)."""

    def __init__(self, script, second_look_below: float = SECOND_LOOK_BELOW):
        Reader.__init__(self, TINY_SPEC, ALPHABET, {}, None, second_look_below)  # not Recognizer's: no network
        self.script = script
        self.batches: list[int] = []

    def logits(self, images: np.ndarray) -> np.ndarray:
        self.batches.append(len(images))
        return np.stack([self.script(image) for image in images])


FAINT = 128  # the stroke level of the test word: lightened to 192, or grown by a pixel


def word_image() -> np.ndarray:
    image = np.full((TINY_SPEC.height, TINY_SPEC.width), 255, dtype=np.uint8)
    image[10:20, 10:40] = FAINT
    return image


def kind(image: np.ndarray) -> str:
    if image.min() > FAINT:
        return "lighter"
    # The 10 x 30 stroke grows to 12 x 32 pixels in the heavier variant.
    return "heavier" if (image < 255).sum() > 12 * 32 - 20 else "original"


def script_of(readings: dict[str, np.ndarray]):
    return lambda image: readings[kind(image)]


def test_an_unsure_reading_gives_way_to_a_surer_variant_with_its_top_paths():
    readings = {"original": torn("cot", "cut"), "lighter": torn("cat", "cot"), "heavier": spelled("cat")}
    recognizer = ScriptedRecognizer(script_of(readings))
    (result,) = recognizer.recognize(word_image()[None], top_k=3)
    assert result.text == "cat" and result.confidence > 0.9
    assert result.top_paths[0] == "cat"
    assert recognizer.batches == [1, 2]  # the image, then its two variants in one batch

    alone = ScriptedRecognizer(script_of(readings), second_look_below=0.0)
    (first,) = alone.recognize(word_image()[None], top_k=3)
    assert first.text in ("cot", "cut") and first.confidence < SECOND_LOOK_BELOW
    assert alone.batches == [1]


def test_a_variant_that_reads_nothing_never_wins():
    readings = {"original": torn("cot", "cut"), "lighter": spelled(""), "heavier": spelled("cat", sure=1.0)}
    (result,) = ScriptedRecognizer(script_of(readings)).recognize(word_image()[None], top_k=3)
    assert result.text in ("cot", "cut")


def test_sure_readings_and_greedy_readings_get_no_second_look():
    sure = {"original": spelled("cot"), "lighter": spelled("cat"), "heavier": spelled("cat", sure=30.0)}
    recognizer = ScriptedRecognizer(script_of(sure))
    (result,) = recognizer.recognize(word_image()[None], top_k=3)
    assert result.text == "cot" and recognizer.batches == [1]

    unsure = {"original": torn("cot", "cut"), "lighter": spelled("cat"), "heavier": spelled("cat")}
    greedy = ScriptedRecognizer(script_of(unsure))
    (result,) = greedy.recognize(word_image()[None], top_k=0)
    assert result.text in ("cot", "cut") and greedy.batches == [1]


@pytest.mark.parametrize("unsure_at", [(0,), (1,), (0, 2)])
def test_only_the_unsure_images_of_a_batch_are_looked_at_again_and_each_keeps_its_place(unsure_at):
    words = ["dog", "sun", "moon"]
    images = np.stack([word_image() for _ in words])
    marks = [60 + 4 * i for i in range(len(words))]  # apart, so a grown mark stays its own
    for i, column in enumerate(marks):
        images[i, 28, column] = 0  # which image of the batch this is, in every variant

    def script(image):
        index = next(i for i, column in enumerate(marks) if image[28, column] == 0)
        if index not in unsure_at:
            return spelled(words[index])
        return spelled("cat") if kind(image) == "heavier" else torn("cot", "cut")

    recognizer = ScriptedRecognizer(script)
    results = recognizer.recognize(images, top_k=3)
    expected = ["cat" if i in unsure_at else word for i, word in enumerate(words)]
    assert [r.text for r in results] == expected
    assert recognizer.batches == [3, 2 * len(unsure_at)]
