import numpy as np
import pytest

from wordocr import char_lm
from wordocr.alphabet import Alphabet
from wordocr.char_lm import CharLanguageModel
from wordocr.config import WRITTEN
from wordocr.decode import beam_decode
from wordocr.words import load_words, split_words

ALPHABET = Alphabet()


@pytest.fixture(scope="module")
def english() -> CharLanguageModel:
    return char_lm.training_words_model(16, ALPHABET)


def test_every_context_is_a_probability_distribution(english):
    probs = np.exp(english.log_probs.astype(np.float64))
    assert english.log_probs.shape == (27**3, 27)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert probs.min() > 0  # interpolation leaves no spelling impossible, only unlikely


def test_english_spelling_beats_the_confusions_an_unseen_font_causes(english):
    # Test-split words (never counted) against what the model read in unseen fonts.
    test_words = set(split_words(load_words(1, 16))["test"])
    pairs = [("equimomental", "eqvimomental"), ("moderation", "woderation"), ("taurid", "faurid"),
             ("glandular", "glandvlar"), ("malbrouck", "mnalbrouck")]  # fmt: skip
    assert {right for right, _ in pairs} <= test_words
    right = english.score_words([r for r, _ in pairs], ALPHABET)
    wrong = english.score_words([w for _, w in pairs], ALPHABET)
    assert (right > wrong + 2).all()  # at least e^2 more likely each


def test_it_is_built_from_the_training_split_only():
    splits = split_words(load_words(1, 16))
    held_out = splits["val"][:50] + splits["test"][:50]
    from_train = CharLanguageModel.build(splits["train"], ALPHABET)
    with_held_out = CharLanguageModel.build(splits["train"] + held_out, ALPHABET)
    english = char_lm.training_words_model(16, ALPHABET)
    np.testing.assert_array_equal(english.log_probs, from_train.log_probs)
    assert not np.array_equal(english.log_probs, with_held_out.log_probs)


def test_counts_and_interpolation_by_hand():
    """Two words, order 2: P(b | a) = (N(a,b) - D + D * T(a) * P1(b)) / N(a), P1 by the same rule."""
    lm = CharLanguageModel.build(["ab", "ab"], ALPHABET, order=2, discount=0.5)
    a, b, end = 0, 1, 26  # the boundary symbol of a letters-only model
    # Unigram over a, b, end (each seen twice, 6 events): (2 - 0.5 + 0.5 * 3 / 27) / 6.
    p1 = (2 - 0.5 + 0.5 * 3 / 27) / 6
    # After a: b seen twice, one distinct follower.
    expected = (2 - 0.5 + 0.5 * 1 * p1) / 2
    assert np.exp(lm.log_probs[a, b]) == pytest.approx(expected, rel=1e-6)
    # A context never seen (after z) backs off to the unigram entirely.
    assert np.exp(lm.log_probs[25, end]) == pytest.approx(p1, rel=1e-6)
    # A word's score is the sum over its letters and the word end.
    # a after the word start and the end after b have the same counts as b after a.
    assert lm.score_words(["ab"], ALPHABET)[0] == pytest.approx(3 * np.log(expected))


def test_scores_ignore_labels_past_each_length(english):
    labels = np.array([[4, 16, 20, 8], [4, 16, 20, 8]])
    scores = english.score(labels, np.array([4, 2]))
    assert scores[0] == pytest.approx(english.score_words(["equi"], ALPHABET)[0])
    assert scores[1] == pytest.approx(english.score_words(["eq"], ALPHABET)[0])
    assert english.score(np.zeros((1, 0), np.int64), np.array([0]))[0] == pytest.approx(
        english.log_probs[-1, 26]
    )


def test_round_trip_through_bytes(english):
    again = CharLanguageModel.from_bytes(english.to_bytes())
    np.testing.assert_array_equal(again.log_probs, english.log_probs)
    assert (again.order, again.weight) == (english.order, english.weight)
    broken = CharLanguageModel(english.log_probs[:100], english.order).to_bytes()
    with pytest.raises(ValueError, match="shape"):
        CharLanguageModel.from_bytes(broken)


def _logits_for(words_and_weights: list[tuple[str, float]], steps: int = 24) -> np.ndarray:
    """Per-step logits where each word is spelt, letter then blank, by its own share of probability
    mass: a toy image the model is unsure about (all words have the same length)."""
    probs = np.full((steps, 27), 1e-6)
    probs[:, 26] = 1.0  # blank elsewhere
    for word, weight in words_and_weights:
        for i, index in enumerate(ALPHABET.encode(word)):
            probs[2 * i, 26] = 1e-6
            probs[2 * i, index] += weight
    return np.log(probs / probs.sum(axis=1, keepdims=True))[None].astype(np.float32)


def test_spelling_reorders_a_near_tie_but_not_a_clear_reading(english):
    near_tie = _logits_for([("eqvi", 0.55), ("equi", 0.45)])
    image_only = beam_decode(near_tie, ALPHABET, top_k=2)
    with_spelling = beam_decode(near_tie, ALPHABET, top_k=2, language_model=english)
    assert image_only[0][0][0].startswith("eqv")
    assert with_spelling[0][0][0] == "equi"
    # The probability the beam holds is shared anew, best word first, none made up.
    image_probs, shared = dict(image_only[0]), dict(with_spelling[0])
    assert shared["equi"] > image_probs["equi"] and shared["equi"] > shared[with_spelling[0][1][0]]
    whole_beam = [beam_decode(near_tie, ALPHABET, top_k=10, language_model=lm) for lm in (None, english)]
    assert sum(p for _, p in whole_beam[1][0]) == pytest.approx(sum(p for _, p in whole_beam[0][0]), rel=1e-6)
    clear = _logits_for([("eqvi", 0.999), ("equi", 0.001)])
    assert beam_decode(clear, ALPHABET, top_k=1, language_model=english)[0][0][0] == "eqvi"


def test_a_zero_weight_reads_like_the_image_alone(english):
    from dataclasses import replace

    logits = np.random.default_rng(0).normal(0, 3, (16, 48, 27)).astype(np.float32)
    silent = replace(english, weight=0.0)
    silent_reading = beam_decode(logits, ALPHABET, top_k=3, language_model=silent)
    image_reading = beam_decode(logits, ALPHABET, top_k=3)
    assert [[w for w, _ in r] for r in silent_reading] == [[w for w, _ in r] for r in image_reading]
    np.testing.assert_allclose([[p for _, p in r] for r in silent_reading], [[p for _, p in r] for r in image_reading],
                               rtol=1e-9)  # fmt: skip


def test_a_one_letter_reading_is_left_to_the_image(english, monkeypatch):
    # The image says "o", a little more than "on"; a lone letter has no spelling to weigh.
    probs = np.full((24, 27), 1e-6)
    probs[:, 26] = 1.0
    probs[0, 26], probs[0, ALPHABET.encode("o")[0]] = 1e-6, 1.0
    probs[2, 26], probs[2, ALPHABET.encode("n")[0]] = 0.6, 0.4
    logits = np.log(probs / probs.sum(axis=1, keepdims=True))[None].astype(np.float32)
    with_spelling = beam_decode(logits, ALPHABET, top_k=2, language_model=english)
    assert with_spelling == beam_decode(logits, ALPHABET, top_k=2)
    assert with_spelling[0][0][0] == "o"
    # Without the rule, spelling would have read the likelier word "on".
    monkeypatch.setattr(char_lm, "MIN_READING_LENGTH", 1)
    assert beam_decode(logits, ALPHABET, top_k=1, language_model=english)[0][0][0] == "on"


WRITTEN_ALPHABET = Alphabet(WRITTEN)


@pytest.fixture(scope="module")
def written_english() -> CharLanguageModel:
    return char_lm.training_words_model(16, WRITTEN_ALPHABET)


def test_written_spelling_ignores_case_and_knows_digits_and_apostrophes(written_english, english):
    assert written_english.symbols == 28 and english.symbols == 27
    probs = np.exp(written_english.log_probs.astype(np.float64))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    game = written_english.score_words(["game", "Game", "GAME"], WRITTEN_ALPHABET)
    assert game[0] == game[1] == game[2]
    # A contraction is spelt as English is; an apostrophe in the middle of nowhere is not.
    dont, dno = written_english.score_words(["don't", "d'ont"], WRITTEN_ALPHABET)
    assert dont > dno + 2
    # Digits are the image's to read: "model2" spells as "model" does, so spelling cannot pull one
    # to the other, and better than "modelz", a letter where the digit is.
    model2, model, modelz = written_english.score_words(["model2", "model", "modelz"], WRITTEN_ALPHABET)
    assert model2 == model and model2 > modelz + 1


def test_a_letters_only_model_saved_before_digits_still_loads(english):
    again = CharLanguageModel.from_bytes(english.to_bytes())
    assert again.symbols == 27
    np.testing.assert_array_equal(char_lm.symbol_table(ALPHABET)[:26], np.arange(26))


def test_written_beam_keeps_capitals_and_digits(written_english):
    """The image spells "Model2", a little more surely than "Model": the reading keeps its capital
    and its digit, spelling or not."""
    steps, classes = 24, WRITTEN_ALPHABET.num_classes
    blank = WRITTEN_ALPHABET.blank_index
    probs = np.full((steps, classes), 1e-6)
    probs[:, blank] = 1.0
    for i, index in enumerate(WRITTEN_ALPHABET.encode("Model2")):
        probs[2 * i, blank] = 1e-6 if i < 5 else 0.35
        probs[2 * i, index] = 1.0 if i < 5 else 0.65
    logits = np.log(probs / probs.sum(axis=1, keepdims=True))[None].astype(np.float32)
    assert beam_decode(logits, WRITTEN_ALPHABET, top_k=1, language_model=written_english)[0][0][0] == "Model2"
