"""The words the system learns to read, and their word-disjoint train/val/test splits.

The list is the intersection of two dictionaries shipped by the ``english_words`` package
(GCIDE and Webster's 2nd): words both agree on are the more common core, and the
intersection drops many one-source oddities. Every 1- and 2-letter entry the dictionaries
know is kept, so short words are present.

Splits are decided per word by a stable hash, so they are disjoint, deterministic and do not
depend on the order or size of the list (adding a word never moves another word). Letters
alone are the exception: they are in every split.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from wordocr.config import ALPHABET

SOURCES = ("gcide", "web2")
SPLITS = ("train", "val", "test")
# Percent of words per split: cumulative thresholds on a hash bucket in [0, 100).
SPLIT_PERCENT = {"train": 90, "val": 5, "test": 5}

_LOWER_AZ = re.compile(r"[a-z]+")


@lru_cache(maxsize=4)
def _dictionary_words() -> frozenset[str]:
    import english_words

    sets = [english_words.get_english_words_set([source], lower=True, alpha=True) for source in SOURCES]
    return frozenset(w for w in set.intersection(*sets) if _LOWER_AZ.fullmatch(w))


def load_words(min_length: int = 1, max_length: int = 16) -> list[str]:
    """Sorted unique lower-case a-z English words with ``min_length <= len <= max_length``."""
    return sorted(w for w in _dictionary_words() if min_length <= len(w) <= max_length)


def split_of(word: str) -> str:
    """The split a word belongs to, from a stable hash of the word alone."""
    bucket = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big") % 100
    threshold = 0
    for split in SPLITS:
        threshold += SPLIT_PERCENT[split]
        if bucket < threshold:
            return split
    raise AssertionError("SPLIT_PERCENT must sum to 100")


def split_words(words: Iterable[str]) -> dict[str, list[str]]:
    """Word-disjoint ``train``/``val``/``test`` lists (about 90/5/5), each sorted and unique.

    Letters alone are the alphabet, not vocabulary, and every split has all of them: hashed like
    words, r alone went to the test split, so no model saw a lone r (it read one as n), while the
    length-balanced draw made it 3 % of every test set.
    """
    splits: dict[str, list[str]] = {split: [] for split in SPLITS}
    for word in sorted(set(words)):
        for split in SPLITS if len(word) == 1 else (split_of(word),):
            splits[split].append(word)
    return splits


# Share of training labels that are random letter strings instead of dictionary words. They
# make the model read glyphs rather than guess likely spellings (an LSTM learns English
# letter statistics otherwise), give rare letters (j, q, x, z) and odd doublings enough
# examples, and cost little accuracy on real words.
RANDOM_STRING_FRACTION = 0.1
# Word lengths are drawn from a blend of the dictionary's length distribution and a uniform
# one, so 1-3 letter words (under 1 % of the dictionary) are seen often enough.
UNIFORM_LENGTH_WEIGHT = 0.5


class WordSampler:
    """Draws labels: dictionary words with length balancing, plus optional random strings.

    ``forbidden`` are strings a random draw must never produce (the other splits' words), so
    random strings cannot leak held-out words into training.
    """

    def __init__(
        self,
        words: Iterable[str],
        random_fraction: float = 0.0,
        forbidden: Iterable[str] = (),
        max_length: int = 16,
        alphabet: str = ALPHABET,
    ) -> None:
        by_length: dict[int, list[str]] = {}
        for word in sorted(set(words)):
            by_length.setdefault(len(word), []).append(word)
        if not by_length:
            raise ValueError("no words to sample from")
        self._lengths = sorted(by_length)
        self._by_length = [by_length[n] for n in self._lengths]
        counts = [len(ws) for ws in self._by_length]
        natural = [c / sum(counts) for c in counts]
        uniform = 1.0 / len(counts)
        self._length_p = np.array([(1 - UNIFORM_LENGTH_WEIGHT) * p + UNIFORM_LENGTH_WEIGHT * uniform for p in natural])
        self._random_fraction = random_fraction
        self._forbidden = frozenset(forbidden)
        self._max_length = max_length
        self._alphabet = alphabet

    def __call__(self, rng: np.random.Generator) -> str:
        if self._random_fraction and rng.random() < self._random_fraction:
            return self._random_string(rng)
        group = self._by_length[rng.choice(len(self._lengths), p=self._length_p)]
        return group[rng.integers(len(group))]

    def _random_string(self, rng: np.random.Generator) -> str:
        while True:
            length = int(rng.integers(1, self._max_length + 1))
            text = "".join(self._alphabet[i] for i in rng.integers(len(self._alphabet), size=length))
            if text not in self._forbidden:
                return text
