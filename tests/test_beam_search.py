"""The compiled CTC prefix beam search against two oracles: every alignment enumerated (exact
word probabilities, small inputs) and TensorFlow's decoder with the CTC forward algorithm
(``tf.nn.ctc_loss``) on model-like logits."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from wordocr.beam_search import prefix_beam_search


def collapse(alignment: tuple[int, ...], blank: int) -> tuple[int, ...]:
    word, previous = [], None
    for c in alignment:
        if c != blank and c != previous:
            word.append(c)
        previous = c
    return tuple(word)


def exact_word_probs(logits: np.ndarray) -> dict[tuple[int, ...], float]:
    """p(word) for one ``[T, C]`` image, by summing every one of the C**T alignments."""
    probs = np.exp(logits - logits.max(-1, keepdims=True)).astype(np.float64)
    probs /= probs.sum(-1, keepdims=True)
    steps, classes = probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for alignment in itertools.product(range(classes), repeat=steps):
        p = float(np.prod(probs[np.arange(steps), alignment]))
        word = collapse(alignment, classes - 1)
        totals[word] = totals.get(word, 0.0) + p
    return totals


def ctc_prob(logits: np.ndarray, word: list[int]) -> float:
    """The exact probability of ``word`` under one ``[T, C]`` image (CTC forward algorithm)."""
    labels = tf.constant([word] if word else np.zeros((1, 0)), tf.int32)
    blank = logits.shape[1] - 1
    loss = tf.nn.ctc_loss(labels, tf.constant(logits[None]), tf.constant([len(word)]), tf.constant([len(logits)]),
                          logits_time_major=False, blank_index=blank)  # fmt: skip
    return float(np.exp(-loss.numpy()[0]))


def model_like_logits(rng: np.random.Generator, batch: int, steps: int = 48, classes: int = 27) -> np.ndarray:
    """Peaked logits like a trained CRNN's: mostly blank, a confident letter now and then, and
    some steps torn between two classes."""
    logits = rng.normal(0, 1, (batch, steps, classes)).astype(np.float32)
    winners = np.where(rng.random((batch, steps)) < 0.6, classes - 1, rng.integers(0, classes - 1, (batch, steps)))
    logits[np.arange(batch)[:, None], np.arange(steps), winners] += rng.uniform(3, 12, (batch, steps))
    torn = rng.random((batch, steps)) < 0.15
    rivals = rng.integers(0, classes, (batch, steps))
    logits[np.arange(batch)[:, None], np.arange(steps), rivals] += np.where(torn, rng.uniform(3, 10, (batch, steps)), 0)
    return logits


def results(logits: np.ndarray, width: int, top_k: int) -> list[list[tuple[tuple[int, ...], float]]]:
    labels, lengths, log_probs, found = prefix_beam_search(logits, width, top_k)
    return [
        [(tuple(labels[b, k, : lengths[b, k]].tolist()), float(np.exp(log_probs[b, k]))) for k in range(found[b])]
        for b in range(len(logits))
    ]


@pytest.mark.parametrize("seed", range(6))
def test_a_beam_wide_enough_for_every_prefix_is_exact(seed):
    # 3 letters + blank over 5 steps: 1 + 3 + ... + 3**5 = 364 prefixes, all fit in the beam.
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (2, 5, 4)).astype(np.float32)
    for image, found in zip(logits, results(logits, width=400, top_k=5), strict=True):
        exact = sorted(exact_word_probs(image).items(), key=lambda item: -item[1])[:5]
        assert [word for word, _ in found] == [word for word, _ in exact]
        assert [p for _, p in found] == pytest.approx([p for _, p in exact], rel=1e-6)


@pytest.mark.slow
def test_a_narrow_beam_reports_lower_bounds_of_the_exact_probability():
    rng = np.random.default_rng(7)
    logits = model_like_logits(rng, 40)
    for image, found in zip(logits, results(logits, width=10, top_k=3), strict=True):
        probs = [p for _, p in found]
        assert len(found) == 3 and len({w for w, _ in found}) == 3
        assert probs == sorted(probs, reverse=True)
        for word, p in found:
            assert p <= ctc_prob(image, list(word)) * (1 + 1e-5)


def test_agrees_with_tensorflows_decoder_but_for_near_ties():
    rng = np.random.default_rng(11)
    logits = model_like_logits(rng, 300)
    log_probs = tf.nn.log_softmax(logits).numpy().transpose(1, 0, 2)
    decoded, _ = tf.nn.ctc_beam_search_decoder(log_probs, np.full(len(logits), logits.shape[1], np.int32),
                                               beam_width=10, top_paths=1)  # fmt: skip
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    theirs = [tuple(int(c) for c in row if c >= 0) for row in dense]
    ours = [found[0][0] for found in results(logits, width=10, top_k=3)]
    disagree = [b for b in range(len(logits)) if ours[b] != theirs[b]]
    assert len(disagree) <= 3, f"{len(disagree)} of {len(logits)} best words differ from TensorFlow's"
    # Both searches are heuristics; where they part, it is between words of about equal probability.
    for b in disagree:
        ratio = ctc_prob(logits[b], list(ours[b])) / ctc_prob(logits[b], list(theirs[b]))
        assert 0.5 < ratio < 2, f"image {b}: our word is {ratio:.3f} times as probable as TensorFlow's"


def test_each_image_of_a_batch_is_searched_alone():
    logits = model_like_logits(np.random.default_rng(3), 8)
    batched = results(logits, width=10, top_k=3)
    assert batched == [results(logits[b : b + 1], width=10, top_k=3)[0] for b in range(len(logits))]


def test_repeats_need_a_blank_between_them():
    # Sharp path "a a - a": the alignment spells "aa", never "aaa".
    logits = np.full((1, 4, 2), -20.0, np.float32)
    for t, c in enumerate([0, 0, 1, 0]):
        logits[0, t, c] = 20.0
    [[(word, p), *_]] = results(logits, width=4, top_k=1)
    assert word == (0, 0)
    assert p == pytest.approx(1.0, abs=1e-6)


def test_fewer_words_than_top_k_come_back_when_fewer_exist():
    # One step over one letter + blank: only "" and "a" are possible.
    logits = np.zeros((1, 1, 2), np.float32)
    [found] = results(logits, width=5, top_k=5)
    assert sorted(found) == [((), pytest.approx(0.5)), ((0,), pytest.approx(0.5))]


@pytest.mark.parametrize(
    ("shape", "width", "top_k", "message"),
    [((2, 5), 10, 3, "batch, time, classes"), ((1, 5, 1), 10, 3, "classes >= 2"), ((1, 5, 4), 2, 3, "top_k")],
)
def test_bad_arguments_say_what_is_wrong(shape, width, top_k, message):
    with pytest.raises(ValueError, match=message):
        prefix_beam_search(np.zeros(shape, np.float32), width, top_k)
