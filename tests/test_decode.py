"""CTC decoding on hand-made logits, with the blank as the LAST class."""

import numpy as np
import pytest

from tests.support.ctc_logits import BLANK, logits_from_probs
from wordocr.alphabet import Alphabet
from wordocr.decode import beam_decode, greedy_decode, greedy_decode_with_confidence

ALPHABET = Alphabet()


def sharp_logits(*paths: str, strength: float = 12.0) -> np.ndarray:
    """[B, T, classes] logits that put (almost) all probability on one class per step; '-' is blank."""
    steps = max(len(p) for p in paths)
    logits = np.zeros((len(paths), steps, ALPHABET.num_classes), np.float32)
    for b, path in enumerate(paths):
        for t, char in enumerate(path.ljust(steps, BLANK)):
            index = ALPHABET.blank_index if char == BLANK else ALPHABET.chars.index(char)
            logits[b, t, index] = strength
    return logits


def test_a_blank_between_repeats_keeps_both_letters():
    assert greedy_decode(sharp_logits("aa-abb"), ALPHABET) == ["aab"]


def test_repeats_without_a_blank_collapse():
    assert greedy_decode(sharp_logits("aaabbb", "-h-ee-l-l-oo"), ALPHABET) == ["ab", "hello"]


def test_all_blank_reads_empty():
    assert greedy_decode(sharp_logits("------"), ALPHABET) == [""]


def test_blank_is_the_last_class_not_the_first():
    # Class 0 is the letter 'a' in this convention; the blank is class 26.
    logits = np.zeros((1, 3, ALPHABET.num_classes), np.float32)
    logits[0, :, 0] = 5.0
    assert greedy_decode(logits, ALPHABET) == ["a"]
    logits[0, :, ALPHABET.blank_index] = 10.0
    assert greedy_decode(logits, ALPHABET) == [""]


def test_greedy_confidence_is_the_best_alignment_probability():
    logits = logits_from_probs(ALPHABET, [{"a": 0.8, "-": 0.2}, {"-": 0.6, "b": 0.4}, {"b": 0.9, "-": 0.1}])
    [(word, confidence)] = greedy_decode_with_confidence(logits, ALPHABET)
    assert word == "ab"
    assert confidence == pytest.approx(0.8 * 0.6 * 0.9, rel=1e-4)


def test_greedy_rejects_logits_for_another_alphabet():
    with pytest.raises(ValueError, match="27"):
        greedy_decode(np.zeros((1, 4, 30), np.float32), ALPHABET)


def test_beam_ranks_the_top_three_words_by_probability():
    logits = logits_from_probs(ALPHABET, [{"b": 0.3, "a": 0.5, "-": 0.2}])
    [paths] = beam_decode(logits, ALPHABET, top_k=3)
    assert [word for word, _ in paths] == ["a", "b", ""]
    assert [p for _, p in paths] == pytest.approx([0.5, 0.3, 0.2], abs=1e-4)


def test_beam_sums_alignments_where_greedy_cannot():
    # Each step alone prefers blank (greedy reads ""), but "a" is spelt by a-, -a and aa: 0.64 > 0.36.
    logits = logits_from_probs(ALPHABET, [{"a": 0.4, "-": 0.6}, {"a": 0.4, "-": 0.6}])
    assert greedy_decode(logits, ALPHABET) == [""]
    [paths] = beam_decode(logits, ALPHABET, top_k=3)
    words = [word for word, _ in paths]
    assert words[:2] == ["a", ""]
    assert [p for _, p in paths[:2]] == pytest.approx([0.64, 0.36], abs=1e-4)
    # Every other word is (nearly) impossible, and no word comes back twice.
    assert all(p < 1e-6 for _, p in paths[2:])
    assert len(set(words)) == len(words)


def test_beam_on_a_batch_keeps_each_image_apart():
    results = beam_decode(sharp_logits("c-aat", "d-oog"), ALPHABET, top_k=3)
    assert [paths[0][0] for paths in results] == ["cat", "dog"]
    for paths in results:
        probs = [p for _, p in paths]
        assert probs == sorted(probs, reverse=True)
        assert 0.99 < probs[0] <= 1.0


def test_beam_rejects_top_k_wider_than_the_beam():
    with pytest.raises(ValueError, match="top_k"):
        beam_decode(sharp_logits("a"), ALPHABET, top_k=5, beam_width=3)
