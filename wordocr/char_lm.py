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

Symbols: the letters a-z are 0..25 whatever their case (spelling is the same in capitals: a
Title-case or all-capitals reading is scored as its lower-case letters). A model of an alphabet
with the apostrophe adds 26 for it ("don't" is spelling). Digits are not spelling: they are
skipped, costing nothing and leaving the context as it was, so "model2" scores as "model" does
and the image alone decides whether the 2 is there (a number is no likelier to be one word than
another). The last symbol is the word start in a context and the word end as an outcome: 26 for
a letters-only model (27 symbols, every model before capitals and digits), 27 otherwise (28
symbols). The whole model is one dense table of log-probabilities, [symbols ** (order - 1)
contexts, symbols outcomes], so scoring a batch of candidates is array lookups.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

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
LETTERS = 26
APOSTROPHE = 26  # in a model of an alphabet with the apostrophe
SKIPPED = -1  # digits: no spelling


@dataclass(frozen=True)
class CharLanguageModel:
    log_probs: np.ndarray  # float32 [symbols ** (order - 1), symbols]
    order: int
    weight: float = WEIGHT

    @property
    def symbols(self) -> int:
        """Letters (and a digit and an apostrophe symbol where the model has them), plus the boundary."""
        return self.log_probs.shape[1]

    @classmethod
    def build(
        cls, words: Iterable[str], alphabet: Alphabet, order: int = ORDER, discount: float = DISCOUNT,
        weight: float = WEIGHT,
    ) -> CharLanguageModel:  # fmt: skip
        """Count every letter after each of its contexts (lengths 0 to ``order - 1``) in ``words``
        and interpolate: P_n(c | h) = (max(N(h, c) - D, 0) + D * T(h) * P_{n-1}(c | h')) / N(h),
        with h' the context without its oldest letter and T(h) the distinct letters after h."""
        symbols = symbol_count(alphabet)
        table = symbol_table(alphabet)
        contexts, outcomes = _events([table[alphabet.encode(w)] for w in words], order, symbols)
        if not len(outcomes):
            raise ValueError("no words to learn spelling from")
        probs = np.full((1, symbols), 1.0 / symbols)  # order 0: uniform over the symbols
        for n in range(order):
            size = symbols**n
            ids = contexts % size  # the last n symbols of each context
            counts = np.bincount(ids * symbols + outcomes, minlength=size * symbols).reshape(size, symbols)
            totals = counts.sum(axis=1, keepdims=True)
            types = (counts > 0).sum(axis=1, keepdims=True)
            lower = probs[np.arange(size) % max(1, size // symbols)]  # P_{n-1} of each context's suffix
            seen = np.maximum(counts - discount, 0) + discount * types * lower
            probs = np.where(totals > 0, seen / np.maximum(totals, 1), lower)
        return cls(np.log(probs).astype(np.float32), order, weight)

    def score(self, labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """log P(word) for words given as rows of this model's symbols [n, max_len] (entries past
        each length are ignored; ``symbol_table`` maps an alphabet's class indices to symbols) and
        their lengths [n]; the word-end symbol is part of every word."""
        labels = np.ascontiguousarray(labels, np.int64)
        lengths = np.ascontiguousarray(lengths, np.int64)
        if labels.ndim != 2 or lengths.shape != labels.shape[:1] or (lengths > labels.shape[1]).any():
            raise ValueError(f"need labels [n, L] and lengths [n] <= L, got {labels.shape}, {lengths.shape}")
        return _score(self.log_probs, labels, lengths, self.symbols ** (self.order - 1), self.symbols)

    def score_words(self, words: list[str], alphabet: Alphabet) -> np.ndarray:
        table = symbol_table(alphabet)
        encoded = [table[alphabet.encode(w)] for w in words]
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
        symbols = log_probs.shape[1] if log_probs.ndim == 2 else 0
        if symbols not in (LETTERS + 1, LETTERS + 2) or log_probs.shape != (symbols ** (order - 1), symbols):
            raise ValueError(f"language model table has shape {log_probs.shape}, not for order {order}")
        return cls(log_probs.astype(np.float32), order, weight)


def symbol_count(alphabet: Alphabet) -> int:
    """27 for an alphabet of letters (and digits) alone, 28 for one with the apostrophe."""
    return LETTERS + 2 if "'" in alphabet.chars else LETTERS + 1


@lru_cache(maxsize=8)
def _symbol_table(chars: str) -> np.ndarray:
    table = []
    for char in chars:
        if char.isascii() and char.isalpha():
            table.append(ord(char.lower()) - ord("a"))
        elif char.isdigit():
            table.append(SKIPPED)
        elif char == "'":
            table.append(APOSTROPHE)
        else:
            raise ValueError(f"no spelling symbol for {char!r}")
    table.append(0)  # the CTC blank: never part of a word, but padding may hold it
    return np.array(table, np.int64)


def symbol_table(alphabet: Alphabet) -> np.ndarray:
    """``table[class index]``: the spelling symbol of each of the alphabet's characters, ``SKIPPED``
    for a digit (the blank's entry is a placeholder)."""
    return _symbol_table(alphabet.chars)


@numba.njit(nogil=True)
def _score(log_probs, labels, lengths, size, symbols):
    # A loop, compiled: 3 us for an image's 10 candidates, where numpy's per-call overhead on
    # these tiny arrays costs about 70 us.
    boundary = symbols - 1
    out = np.zeros(labels.shape[0])
    for n in range(labels.shape[0]):
        context = size - 1  # word start in every position of the context
        total = 0.0
        for i in range(lengths[n] + 1):
            outcome = labels[n, i] if i < lengths[n] else boundary
            if outcome < 0:  # SKIPPED
                continue
            total += log_probs[context, outcome]
            context = (context * symbols + outcome) % size
        out[n] = total
    return out


def _events(encoded: list[np.ndarray], order: int, symbols: int) -> tuple[np.ndarray, np.ndarray]:
    """(context id, outcome) for every symbol and word end: the context id holds the previous
    ``order - 1`` symbols in base ``symbols``, the latest in the lowest digit, word starts as the
    boundary symbol."""
    size = symbols ** (order - 1)
    boundary = symbols - 1
    contexts, outcomes = [], []
    for letters in encoded:
        context = size - 1
        for symbol in [*letters.tolist(), boundary]:
            if symbol == SKIPPED:
                continue
            contexts.append(context)
            outcomes.append(symbol)
            context = (context * symbols + symbol) % size
    return np.array(contexts, np.int64), np.array(outcomes, np.int64)


def training_words_model(max_length: int, alphabet: Alphabet, weight: float = WEIGHT) -> CharLanguageModel:
    """The model of the training split's words (the words a model artifact was trained on); for an
    alphabet with the apostrophe, also of the words with apostrophes and digits the generator
    writes (``wordocr.written``), at its rates, drawn with a fixed seed."""
    from wordocr.words import load_words, split_words

    words = split_words(load_words(1, max_length))["train"]
    if symbol_count(alphabet) > LETTERS + 1:
        from wordocr.written import APOSTROPHE_SHARE, DIGIT_SHARE, WrittenWords

        rng = np.random.default_rng(0)
        share = DIGIT_SHARE + APOSTROPHE_SHARE
        only_extras = WrittenWords(lambda _: "", words, max_length, (1.0, 0.0, 0.0), DIGIT_SHARE / share,
                                   APOSTROPHE_SHARE / share)  # fmt: skip
        extras = (only_extras(rng) for _ in range(int(len(words) * share)))
        words = [*words, *(word for word in extras if word)]
    return CharLanguageModel.build(words, alphabet, weight=weight)
