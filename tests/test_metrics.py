"""Word accuracy and character error rate on hand examples."""

import pytest

from wordocr.metrics import character_error_rate, edit_distance, word_accuracy


def test_word_accuracy_counts_exact_matches_only():
    assert word_accuracy(["cat", "dgo", "tree", ""], ["cat", "dog", "tree", "sun"]) == 0.5


def test_word_accuracy_of_nothing_is_zero():
    assert word_accuracy([], []) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("", "", 0), ("abc", "abc", 0), ("", "abc", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("ab", "ba", 2)],
)
def test_edit_distance(a, b, distance):
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


def test_cer_is_total_edits_over_total_truth_characters():
    # 1 substitution + 1 deletion + 0 over 3 + 4 + 3 characters.
    assert character_error_rate(["cot", "tre", "sun"], ["cat", "tree", "sun"]) == pytest.approx(2 / 10)


def test_cer_can_exceed_one_when_predictions_ramble():
    assert character_error_rate(["abcdef"], ["x"]) == 6.0


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError):
        word_accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        character_error_rate(["a"], [])
