"""A character n-gram language model of English spelling, to rerank the beam's candidate words.

The CRNN reads glyphs; in a font it never saw it may take a spur-less u for a v or an italic m
for a w, and then its best path spells "eqvimomental". The right word is almost always among the
beam's ten candidates (99.7 % of clean and 90 % of hard images in unseen fonts), and English
spelling tells them apart: "qv" does not occur, "qu" does. So the candidates are reranked by

    log P_ctc(word | image) + weight * log P_lm(word)

where P_lm is this model: letters given the previous ``order - 1`` letters, interpolated
absolute discounting over all shorter contexts, with a word-end symbol. It is built from the
**training split's words only** (val and test words stay unseen), so it knows spelling, not the
test vocabulary. The weight is small: the image still decides; spelling breaks near ties.

Symbols: letters are 0..25 (the alphabet's indices), 26 is the word start in a context and the
word end as an outcome. The whole model is one dense table of log-probabilities,
[27 ** (order - 1) contexts, 27 outcomes], so scoring a batch of candidates is array lookups.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import numba
import numpy as np

from wordocr.alphabet import Alphabet

ORDER = 4
DISCOUNT = 0.75
# Weight of the spelling model against the image, chosen on validation words (train fonts, all
# tiers): accuracy is flat from 0.15 to 0.3 and falls beyond, where spelling starts to overrule
# clear images of rare words.
WEIGHT = 0.2
# How many beam candidates are reranked: the beam's width (see recognizer.BEAM_WIDTH).
CANDIDATES = 10
# Spelling reranks only when the image's best reading has at least this many letters: a lone
# letter has no spelling, and a likelier word a letter longer ("on" for an "o") must not win it.
MIN_READING_LENGTH = 2
BOUNDARY = 26  # word start (in a context) and word end (as an outcome)
SYMBOLS = 27


@dataclass(frozen=True)
class CharLanguageModel:
    log_probs: np.ndarray  # float32 [SYMBOLS ** (order - 1), SYMBOLS]
    order: int
    weight: float = WEIGHT

    @classmethod
    def build(
        cls, words: Iterable[str], alphabet: Alphabet, order: int = ORDER, discount: float = DISCOUNT,
        weight: float = WEIGHT,
    ) -> CharLanguageModel:  # fmt: skip
        """Count every letter after each of its contexts (lengths 0 to ``order - 1``) in ``words``
        and interpolate: P_n(c | h) = (max(N(h, c) - D, 0) + D * T(h) * P_{n-1}(c | h')) / N(h),
        with h' the context without its oldest letter and T(h) the distinct letters after h."""
        if alphabet.num_classes - 1 != BOUNDARY:
            raise ValueError(f"a {SYMBOLS - 1}-letter alphabet is needed, got {alphabet.chars!r}")
        contexts, outcomes = _events([alphabet.encode(w) for w in words], order)
        if not len(outcomes):
            raise ValueError("no words to learn spelling from")
        probs = np.full((1, SYMBOLS), 1.0 / SYMBOLS)  # order 0: uniform over the symbols
        for n in range(order):
            size = SYMBOLS**n
            ids = contexts % size  # the last n symbols of each context
            counts = np.bincount(ids * SYMBOLS + outcomes, minlength=size * SYMBOLS).reshape(size, SYMBOLS)
            totals = counts.sum(axis=1, keepdims=True)
            types = (counts > 0).sum(axis=1, keepdims=True)
            lower = probs[np.arange(size) % max(1, size // SYMBOLS)]  # P_{n-1} of each context's suffix
            seen = np.maximum(counts - discount, 0) + discount * types * lower
            probs = np.where(totals > 0, seen / np.maximum(totals, 1), lower)
        return cls(np.log(probs).astype(np.float32), order, weight)

    def score(self, labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """log P(word) for words given as label rows [n, max_len] (indices past each length are
        ignored) and their lengths [n]; the word-end symbol is part of every word."""
        labels = np.ascontiguousarray(labels, np.int64)
        lengths = np.ascontiguousarray(lengths, np.int64)
        if labels.ndim != 2 or lengths.shape != labels.shape[:1] or (lengths > labels.shape[1]).any():
            raise ValueError(f"need labels [n, L] and lengths [n] <= L, got {labels.shape}, {lengths.shape}")
        return _score(self.log_probs, labels, lengths, SYMBOLS ** (self.order - 1))

    def score_words(self, words: list[str], alphabet: Alphabet) -> np.ndarray:
        encoded = [alphabet.encode(w) for w in words]
        lengths = np.array([len(e) for e in encoded], np.int64)
        labels = np.zeros((len(words), int(lengths.max(initial=0))), np.int64)
        for row, e in zip(labels, encoded, strict=True):
            row[: len(e)] = e
        return self.score(labels, lengths)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, log_probs=self.log_probs, order=self.order, weight=self.weight)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CharLanguageModel:
        with np.load(io.BytesIO(data)) as npz:
            log_probs, order, weight = npz["log_probs"], int(npz["order"]), float(npz["weight"])
        if log_probs.shape != (SYMBOLS ** (order - 1), SYMBOLS):
            raise ValueError(f"language model table has shape {log_probs.shape}, not for order {order}")
        return cls(log_probs.astype(np.float32), order, weight)


@numba.njit(nogil=True)
def _score(log_probs, labels, lengths, size):
    # A loop, compiled: 3 us for an image's 10 candidates, where numpy's per-call overhead on
    # these tiny arrays costs about 70 us.
    out = np.zeros(labels.shape[0])
    for n in range(labels.shape[0]):
        context = size - 1  # word start in every position of the context
        total = 0.0
        for i in range(lengths[n] + 1):
            outcome = labels[n, i] if i < lengths[n] else BOUNDARY
            total += log_probs[context, outcome]
            context = (context * SYMBOLS + outcome) % size
        out[n] = total
    return out


def _events(encoded: list[list[int]], order: int) -> tuple[np.ndarray, np.ndarray]:
    """(context id, outcome) for every letter and word end: the context id holds the previous
    ``order - 1`` symbols in base SYMBOLS, the latest in the lowest digit, word starts as 26."""
    size = SYMBOLS ** (order - 1)
    contexts, outcomes = [], []
    for letters in encoded:
        context = size - 1
        for symbol in [*letters, BOUNDARY]:
            contexts.append(context)
            outcomes.append(symbol)
            context = (context * SYMBOLS + symbol) % size
    return np.array(contexts, np.int64), np.array(outcomes, np.int64)


def training_words_model(max_length: int, alphabet: Alphabet, weight: float = WEIGHT) -> CharLanguageModel:
    """The model of the training split's words (the words a model artifact was trained on)."""
    from wordocr.words import load_words, split_words

    return CharLanguageModel.build(split_words(load_words(1, max_length))["train"], alphabet, weight=weight)
