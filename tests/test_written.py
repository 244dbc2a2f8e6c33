"""Words as people write them: case, digits and apostrophes in the generated text."""

from collections import Counter

import numpy as np
import pytest

from wordocr import written
from wordocr.config import WRITTEN
from wordocr.generate import _word_sampler
from wordocr.words import load_words, split_words


def test_set_case_and_case_of_agree():
    for case in written.CASES:
        assert written.case_of(written.set_case("game", case)) == case
    assert written.set_case("don't", "upper") == "DON'T"
    assert written.case_of("2nd") == "lower"
    assert written.case_of("A") == "title"  # one capital letter alone: how a name's initial is written
    with pytest.raises(ValueError, match="unknown case"):
        written.set_case("game", "small caps")


ORDINALS = [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"), (21, "21st"),
            (112, "112th")]  # fmt: skip


@pytest.mark.parametrize(("number", "expected"), ORDINALS)
def test_ordinals(number, expected):
    assert written.ordinal(number) == expected


def test_written_words_come_at_their_shares_and_fit_the_model():
    draw = _word_sampler("test", 16, "written")
    rng = np.random.default_rng(5)
    words = [draw(rng) for _ in range(4000)]
    cases = Counter(written.case_of(w) for w in words)
    for case, share in zip(written.CASES, written.CASE_SHARES, strict=True):
        assert cases[case] / len(words) == pytest.approx(share, abs=0.03)
    with_digits = sum(any(c.isdigit() for c in w) for w in words) / len(words)
    with_apostrophe = sum("'" in w for w in words) / len(words)
    assert with_digits == pytest.approx(written.DIGIT_SHARE, abs=0.015)
    assert with_apostrophe == pytest.approx(written.APOSTROPHE_SHARE, abs=0.015)
    assert all(1 <= len(w) <= 16 and set(w) <= set(WRITTEN) for w in words)


def test_written_words_keep_the_splits_apart():
    """A test cell's words, lower-cased and stripped of what was added to them, are test-split words
    (or letters, numbers and contractions, which every split shares)."""
    splits = split_words(load_words(1, 16))
    train = set(splits["train"])
    draw = _word_sampler("test", 16, "written")
    rng = np.random.default_rng(6)
    for word in (draw(rng) for _ in range(2000)):
        base = word.lower()
        if base in written.CONTRACTIONS or base.rstrip("0123456789") == "" or base[:1].isdigit():
            continue
        base = base.rstrip("0123456789").removesuffix("'s").rstrip("'")
        assert base not in train or len(base) == 1, word


def test_single_case_cells_hold_only_that_case():
    for case in ("title", "upper"):
        draw = _word_sampler("test", 16, case)
        rng = np.random.default_rng(7)
        words = [draw(rng) for _ in range(300)]
        assert {written.case_of(w) for w in words if len(w) > 1} == {case}
        assert not any(c.isdigit() or c == "'" for w in words for c in w)


def test_lower_text_draws_what_it_always_drew():
    """A lower-case dataset's words are the dictionary sampler's, unchanged by the written forms."""
    lower, rng = _word_sampler("test", 16, "lower"), np.random.default_rng(8)
    assert all(w.islower() and w.isalpha() for w in (lower(rng) for _ in range(500)))
