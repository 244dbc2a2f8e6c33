"""Words as people write them: in the case the writer chose, now and then with digits or an apostrophe.

The dictionary gives lower-case a-z words; a photographed word comes as it was written: the first
word of a sentence or a name in Title case, a heading or a sign in CAPITALS, a product or an
ordinal with digits (model2, 2nd, 1990s), a contraction or a possessive (don't, o'clock, cat's).
``WrittenWords`` turns a split's lower-case words into such text at rates meant to resemble running
text. Every form is built from the split's own words (or from closed classes: numbers and the
contractions, which like single letters are glyphs rather than vocabulary), so the splits stay
word-disjoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

CASES = ("lower", "title", "upper")
# The case a written word is set in: lower case dominates running text; Title case starts sentences
# and names; capitals are headings and signs. Capitals are over-represented on purpose: a model
# sees each capital letter mostly through them.
CASE_SHARES = (0.6, 0.25, 0.15)
# Shares of written words with digits and with an apostrophe: words with digits are a few percent
# of English text, contractions and possessives about as many.
DIGIT_SHARE = 0.05
APOSTROPHE_SHARE = 0.04

CONTRACTIONS = (
    "aren't", "can't", "couldn't", "didn't", "doesn't", "don't", "hadn't", "hasn't", "haven't",
    "he'd", "he'll", "he's", "i'd", "i'll", "i'm", "i've", "isn't", "it'd", "it'll", "it's", "let's",
    "ma'am", "mightn't", "mustn't", "o'clock", "shan't", "she'd", "she'll", "she's", "shouldn't",
    "that's", "there's", "they'd", "they'll", "they're", "they've", "wasn't", "we'd", "we'll",
    "we're", "we've", "weren't", "what's", "where's", "who's", "won't", "wouldn't", "y'all",
    "you'd", "you'll", "you're", "you've",
)  # fmt: skip
ORDINAL_SUFFIXES = {1: "st", 2: "nd", 3: "rd"}


def set_case(word: str, case: str) -> str:
    """``word`` (lower case) in ``case``: ``lower``, ``title`` (first letter capital) or ``upper``."""
    if case == "lower":
        return word
    if case == "title":
        return word[:1].upper() + word[1:]
    if case == "upper":
        return word.upper()
    raise ValueError(f"unknown case {case!r}; expected one of {CASES}")


def case_of(text: str) -> str:
    """Which of ``CASES`` a written word is in, judged by its letters (``lower`` without any)."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return "upper"
    if letters and letters[0].isupper():
        return "title"
    return "lower"


def ordinal(number: int) -> str:
    suffix = "th" if number % 100 in (11, 12, 13) else ORDINAL_SUFFIXES.get(number % 10, "th")
    return f"{number}{suffix}"


def number_word(rng: np.random.Generator, short_words: Sequence[str], max_length: int) -> str:
    """A word with digits: a number, an ordinal, a decade, or one of ``short_words`` with a number
    after it (``model2``, ``area51``)."""
    kind = rng.integers(4)
    digits = int(rng.integers(1, 5))
    number = int(rng.integers(10 ** (digits - 1) if digits > 1 else 0, 10**digits))
    if kind == 0:
        text = str(number)
    elif kind == 1:
        text = ordinal(max(number, 1))
    elif kind == 2:
        text = f"{int(rng.integers(0, 10))}0s" if rng.random() < 0.4 else f"{int(rng.integers(180, 203))}0s"
    else:
        suffix = str(number % 100)
        word = short_words[rng.integers(len(short_words))] if short_words else ""
        text = word + suffix if len(word) + len(suffix) <= max_length else suffix
    return text[:max_length]


def apostrophe_word(rng: np.random.Generator, words: Sequence[str], max_length: int) -> str:
    """A contraction (half of them) or a possessive of one of ``words`` (``cat's``, ``cats'``)."""
    fitting = [] if rng.random() < 0.5 else words
    word = fitting[rng.integers(len(fitting))] if len(fitting) else ""
    if len(word) < 2 or len(word) + 2 > max_length:
        return CONTRACTIONS[rng.integers(len(CONTRACTIONS))]
    return word + "'" if word.endswith("s") else word + "'s"


class WrittenWords:
    """Draws written text: ``draw_word(rng)`` (a lower-case word, dictionary or random letters)
    becomes, by the shares above, a word with digits, a contraction or possessive, or itself, and
    then is set in a case drawn from ``case_shares`` (a single case for a test cell of it alone).
    """

    def __init__(
        self,
        draw_word: Callable[[np.random.Generator], str],
        words: Sequence[str],
        max_length: int,
        case_shares: Sequence[float] = CASE_SHARES,
        digit_share: float = DIGIT_SHARE,
        apostrophe_share: float = APOSTROPHE_SHARE,
    ) -> None:
        if len(case_shares) != len(CASES) or abs(sum(case_shares) - 1) > 1e-9 or min(case_shares) < 0:
            raise ValueError(f"case_shares must be {len(CASES)} non-negative shares summing to 1, got {case_shares}")
        self._draw_word = draw_word
        self._short = [w for w in sorted(words) if 2 <= len(w) <= 6]
        self._possessable = [w for w in sorted(words) if 2 <= len(w) <= max_length - 2]
        self._max_length = max_length
        self._case_p = np.asarray(case_shares, float)
        self._digit_share = digit_share
        self._apostrophe_share = apostrophe_share

    def __call__(self, rng: np.random.Generator) -> str:
        roll = rng.random()
        if roll < self._digit_share:
            text = number_word(rng, self._short, self._max_length)
        elif roll < self._digit_share + self._apostrophe_share:
            text = apostrophe_word(rng, self._possessable, self._max_length)
        else:
            text = self._draw_word(rng)
        return set_case(text, CASES[rng.choice(len(CASES), p=self._case_p)])
