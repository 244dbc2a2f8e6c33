"""From per-step CTC logits to words, with the blank as the LAST class (see ``wordocr.alphabet``).

Greedy decoding (best class per step, collapse repeats, drop blanks) is plain numpy and costs
microseconds. Beam search (``wordocr.beam_search``) finds the most probable *words* (summing
the alignments that spell the same word) and gives the runners-up, in tens of microseconds.

Confidences are probabilities in 0..1:
- greedy: the probability of the single best alignment, the product over steps of the top class
  probability (a cautious number: a word is often spelt by several alignments);
- beam: the summed probability of the alignments of each word that the beam kept.

With a spelling model (``wordocr.char_lm``) the beam's candidates are reranked by image and
spelling together, and the probability the beam holds (the sum over its words) is shared among
them in proportion to ``P(word | image) * P_lm(word) ** weight``: confidences stay ordered like
the words, a blurred image still gets low ones, and with weight 0 they are the beam's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wordocr.alphabet import Alphabet
from wordocr.written_forms import settle

if TYPE_CHECKING:
    from wordocr.char_lm import CharLanguageModel


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _check(logits: np.ndarray, alphabet: Alphabet) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim != 3 or logits.shape[-1] != alphabet.num_classes:
        raise ValueError(
            f"logits must be [batch, time, {alphabet.num_classes}] for this alphabet, got {logits.shape}"
        )
    return logits


def greedy_decode_with_confidence(logits: np.ndarray, alphabet: Alphabet) -> list[tuple[str, float]]:
    """Best-path decoding: ``(word, probability of its best alignment)`` for each image."""
    logits = _check(logits, alphabet)
    best = logits.argmax(axis=-1)  # [B, T]
    previous = np.concatenate([np.full_like(best[:, :1], -1), best[:, :-1]], axis=1)
    keep = (best != alphabet.blank_index) & (best != previous)
    path_log_prob = log_softmax(logits).max(axis=-1).sum(axis=-1)
    return [
        (alphabet.decode(row[mask].tolist()), float(np.exp(lp)))
        for row, mask, lp in zip(best, keep, path_log_prob, strict=True)
    ]


def greedy_decode(logits: np.ndarray, alphabet: Alphabet) -> list[str]:
    """Best class per step, repeats collapsed, blanks dropped: ``[B, T, classes]`` -> ``B`` words."""
    return [word for word, _ in greedy_decode_with_confidence(logits, alphabet)]


def beam_decode(
    logits: np.ndarray,
    alphabet: Alphabet,
    top_k: int = 3,
    beam_width: int = 10,
    language_model: CharLanguageModel | None = None,
    candidates: int | None = None,
) -> list[list[tuple[str, float]]]:
    """The ``top_k`` most probable words per image, best first, as ``(word, probability)``.

    With ``language_model`` the beam keeps ``candidates`` words (at least ``top_k``; by default
    ``beam_width``, all it can hold) and they are ordered by ``log P(word | image) + weight *
    log P_lm(word)``, which also shares out their probabilities (see the module notes). Fewer
    than ``top_k`` come back when the beam holds fewer distinct words. With an alphabet that has
    capitals the ``candidates`` are also weighed by ``wordocr.written_forms.settle``.
    """
    from wordocr.beam_search import prefix_beam_search

    logits = _check(logits, alphabet)
    if top_k < 1 or beam_width < top_k:
        raise ValueError(f"need 1 <= top_k <= beam_width, got top_k={top_k}, beam_width={beam_width}")
    if len(logits) == 0:
        return []
    if candidates is None:
        candidates = beam_width
    written = alphabet.has_capitals
    searched = top_k if language_model is None and not written else max(top_k, candidates)
    # The search wants the blank last, which is our convention.
    labels, lengths, log_probs, found = prefix_beam_search(logits, max(beam_width, searched), searched)
    order = np.broadcast_to(np.arange(searched), log_probs.shape)
    probs = np.exp(log_probs)
    if language_model is not None:
        order, probs = _rerank(labels, lengths, log_probs, found, language_model, alphabet)
    readings = [
        [
            (alphabet.decode(labels[b, k, : lengths[b, k]].tolist()), float(probs[b, k]))
            for k in order[b, : found[b] if written else min(top_k, found[b])]
        ]
        for b in range(len(logits))
    ]
    if written:
        readings = [settle(candidates)[:top_k] for candidates in readings]
    return readings


def _rerank(
    labels: np.ndarray, lengths: np.ndarray, log_probs: np.ndarray, found: np.ndarray,
    language_model: CharLanguageModel, alphabet: Alphabet,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(candidate order per image, best first; each candidate's share of the beam's probability).

    Images whose best reading is shorter than the model's ``MIN_READING_LENGTH`` keep the
    beam's own order and probabilities."""
    from wordocr.char_lm import MIN_READING_LENGTH, symbol_table

    batch, searched = log_probs.shape
    symbols = symbol_table(alphabet)[labels.reshape(batch * searched, -1)]
    spelling = language_model.score(symbols, lengths.reshape(-1))
    combined = log_probs + language_model.weight * spelling.reshape(batch, searched)
    combined[np.arange(searched)[None, :] >= found[:, None]] = -np.inf  # empty beam slots
    top = combined.max(axis=1, keepdims=True)
    shares = np.exp(combined - top)
    shares /= shares.sum(axis=1, keepdims=True)
    mass = np.exp(log_probs).sum(axis=1, keepdims=True)  # exp(-inf) of empty slots adds 0
    order, probs = np.argsort(-combined, axis=1, kind="stable"), mass * shares
    short = lengths[:, 0] < MIN_READING_LENGTH
    order[short], probs[short] = np.arange(searched), np.exp(log_probs[short])
    return order, probs
