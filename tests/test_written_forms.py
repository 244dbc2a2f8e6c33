"""The written-form prior over the beam's candidates: one case per word, digits at its ends, and a
lone letter whose capital is its own shape given in lower case, as a guess."""

import pytest

from tests.support.ctc_logits import logits_from_probs
from wordocr.alphabet import Alphabet
from wordocr.config import WRITTEN
from wordocr.decode import beam_decode
from wordocr.written_forms import LONE_LETTER_LOWER_SHARE, UNWRITTEN_FORM_WEIGHT, is_written_form, settle

WRITTEN_ALPHABET = Alphabet(WRITTEN)


@pytest.mark.parametrize("word", ["game", "Game", "GAME", "model2", "Model2", "MODEL2", "2nd", "1990s",
                                  "1990S", "don't", "O'CLOCK", "42", "a", "A", "", "cats'"])  # fmt: skip
def test_forms_people_write(word):
    assert is_written_form(word)


@pytest.mark.parametrize("word", ["mY", "gAME", "scooP", "LOOKUp", "cONSIST", "s0y", "m0del", "GA1ME"])
def test_forms_nobody_writes(word):
    assert not is_written_form(word)


def test_a_written_candidate_behind_unwritten_ones_becomes_the_reading():
    settled = settle([("mY", 0.5), ("mI", 0.3), ("mr", 0.1)])
    assert [w for w, _ in settled] == ["mr", "mY", "mI"]
    assert sum(p for _, p in settled) == pytest.approx(0.9)
    # The prior, and only it, moved the probabilities: mr : mY is 0.1 : 0.5 * weight.
    assert settled[0][1] / settled[1][1] == pytest.approx(0.1 / (0.5 * UNWRITTEN_FORM_WEIGHT))


def test_candidates_all_in_one_kind_of_form_keep_their_order_and_probabilities():
    assert settle([("game", 0.6), ("gane", 0.2), ("Game", 0.1)]) == [("game", 0.6), ("gane", 0.2), ("Game", 0.1)]
    assert settle([("mY", 0.5), ("mI", 0.3)]) == [("mY", 0.5), ("mI", 0.3)]


def test_a_lone_twin_letter_is_given_in_lower_case_with_a_guess_s_confidence():
    order = settle([("C", 0.9), ("c", 0.05), ("G", 0.05)])
    assert order[0][0] == "c"
    settled = dict(order)
    assert settled["c"] == pytest.approx(0.95 * LONE_LETTER_LOWER_SHARE)
    assert settled["C"] == pytest.approx(0.95 * (1 - LONE_LETTER_LOWER_SHARE))
    assert settled["G"] == pytest.approx(0.05)


def test_a_lone_letter_with_a_capital_of_its_own_shape_keeps_its_case():
    assert settle([("G", 0.9), ("g", 0.05)]) == [("G", 0.9), ("g", 0.05)]
    assert settle([("a", 0.9), ("A", 0.05)])[0] == ("a", 0.9)


def test_beam_decode_weighs_forms_with_a_written_alphabet_only():
    # The image reads "mY" a little more surely than "mr": with capitals in the alphabet the
    # written form wins; the search itself, without the prior, prefers "mY".
    steps = [{"m": 1.0}, {"-": 1.0}, {"Y": 0.55, "r": 0.45}, {"-": 1.0}]
    logits = logits_from_probs(WRITTEN_ALPHABET, steps, floor=1e-6)
    [paths] = beam_decode(logits, WRITTEN_ALPHABET, top_k=2)
    assert [w for w, _ in paths] == ["mr", "mY"]
    from wordocr.beam_search import prefix_beam_search

    labels, lengths, _, _ = prefix_beam_search(logits, 10, 1)
    assert WRITTEN_ALPHABET.decode(labels[0, 0, : lengths[0, 0]].tolist()) == "mY"


def test_beam_decode_with_the_lower_case_alphabet_is_unchanged():
    lower = Alphabet()
    logits = logits_from_probs(lower, [{"c": 1.0}, {"-": 1.0}, {"-": 1.0}], floor=1e-6)
    [paths] = beam_decode(logits, lower, top_k=1)
    assert paths[0][0] == "c" and paths[0][1] == pytest.approx(1.0, abs=1e-4)
