import numpy as np

from wordocr.alphabet import DEFAULT_ALPHABET
from wordocr.config import DEFAULT_INPUT_SPEC
from wordocr.words import WordSampler, load_words, split_words


def test_words_are_sorted_unique_lowercase_and_include_short_words():
    words = load_words()
    assert words == sorted(set(words))
    assert len(words) > 50_000
    assert all(DEFAULT_ALPHABET.is_valid(w, DEFAULT_INPUT_SPEC.max_word_length) for w in words)
    assert {"a", "i", "an", "of", "to", "the", "and", "cat"} <= set(words)
    assert sum(len(w) <= 3 for w in words) > 500


def test_length_limits_are_respected():
    words = load_words(min_length=3, max_length=5)
    assert words and all(3 <= len(w) <= 5 for w in words)


def test_splits_are_disjoint_complete_and_roughly_90_5_5():
    words = load_words()
    splits = split_words(words)
    train, val, test = (set(splits[s]) for s in ("train", "val", "test"))
    letters = {w for w in words if len(w) == 1}
    assert len(letters) == 26
    assert letters <= train and letters <= val and letters <= test  # the alphabet, in every split
    train, val, test = train - letters, val - letters, test - letters
    assert not (train & val or train & test or val & test)
    assert train | val | test | letters == set(words)
    assert 0.87 < len(train) / len(words) < 0.93
    assert 0.03 < len(val) / len(words) < 0.07
    assert 0.03 < len(test) / len(words) < 0.07


def test_splits_do_not_depend_on_list_order_or_membership():
    words = load_words()
    shuffled = list(np.random.default_rng(0).permutation(words))
    assert split_words(shuffled) == split_words(words)
    subset = split_words(words[::7])
    full = split_words(words)
    for split, members in subset.items():
        assert set(members) <= set(full[split])


def test_sampler_random_strings_never_spell_forbidden_words():
    forbidden = {"ab", "a"}
    sampler = WordSampler(["cat"], random_fraction=1.0, forbidden=forbidden, max_length=2, alphabet="ab")
    rng = np.random.default_rng(0)
    draws = {sampler(rng) for _ in range(300)}
    assert draws == {"b", "aa", "ba", "bb"}


def test_sampler_draws_short_words_often_and_is_deterministic():
    words = load_words()
    sampler = WordSampler(words)
    first, second = np.random.default_rng(1), np.random.default_rng(1)
    assert [sampler(first) for _ in range(50)] == [sampler(second) for _ in range(50)]
    rng = np.random.default_rng(2)
    sample = [sampler(rng) for _ in range(2000)]
    assert set(sample) <= set(words)
    assert sum(len(w) <= 3 for w in sample) / len(sample) > 0.05
