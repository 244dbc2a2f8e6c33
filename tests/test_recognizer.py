"""The inference wrapper the predictor uses: trained words come back, with ranked alternatives."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.support.tiny_data import TINY_WORDS, make_samples, tiny_trained_fixture  # noqa: F401
from wordocr.recognizer import Recognizer

pytestmark = pytest.mark.slow


@pytest.fixture
def recognizer(tiny_trained):
    result, _, _ = tiny_trained
    return Recognizer.load(result.artifact_uri)


@pytest.fixture
def images():
    return np.stack([s.image for s in make_samples(TINY_WORDS)])


def test_recognizer_reads_the_trained_words_with_top3_paths(recognizer, images):
    results = recognizer.recognize(images, top_k=3)
    assert len(results) == len(TINY_WORDS)
    correct = sum(r.text == word for r, word in zip(results, TINY_WORDS, strict=True))
    assert correct >= len(TINY_WORDS) - 1
    for result in results:
        assert 0.0 < result.confidence <= 1.0
        assert len(result.top_paths) == len(result.top_confidences) == 3
        assert len(set(result.top_paths)) == 3
        assert result.top_confidences == sorted(result.top_confidences, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in result.top_confidences)
        assert sum(result.top_confidences) <= 1.0 + 1e-5
    assert sum(r.top_paths[0] == word for r, word in zip(results, TINY_WORDS, strict=True)) >= len(TINY_WORDS) - 1


def test_the_artifacts_spelling_model_reranks_the_beam(tiny_trained, recognizer, images):
    from wordocr.artifact import load_artifact

    assert recognizer.language_model is not None
    model, spec, alphabet, info = load_artifact(tiny_trained[0].artifact_uri)
    image_only = Recognizer(model, spec, alphabet, info)
    assert image_only.language_model is None
    # Spelling rewrites the probabilities among the beam's words, never the image's own reading
    # of a word it is sure of: the tiny model knows its words, so both read them alike.
    with_spelling, without = recognizer.recognize(images), image_only.recognize(images)
    assert [r.text for r in with_spelling] == [r.text for r in without]
    assert [r.top_confidences for r in with_spelling] != [r.top_confidences for r in without]


def test_greedy_only_gives_the_same_words(recognizer, images):
    fast = recognizer.recognize(images, top_k=0)
    full = recognizer.recognize(images, top_k=3)
    assert [r.text for r in fast] == [r.text for r in full]
    assert all(r.top_paths == [r.text] for r in fast)
    # The beam's reading is its best path, with that path's (summed) probability.
    assert all(r.text == r.top_paths[0] and r.confidence == r.top_confidences[0] for r in full)
    assert all(f.confidence <= r.confidence + 1e-6 for f, r in zip(fast, full, strict=True))


def test_logits_match_the_artifact_geometry(recognizer, images):
    logits = recognizer.logits(images[:2])
    assert logits.shape == (2, recognizer.spec.time_steps, recognizer.alphabet.num_classes)
    # A single [H, W] image is a batch of one.
    np.testing.assert_allclose(recognizer.logits(images[0]), logits[:1], rtol=1e-4, atol=1e-4)


def test_wrong_shapes_and_dtypes_are_refused(recognizer, images):
    with pytest.raises(ValueError, match="uint8"):
        recognizer.recognize(images.astype(np.float32))
    with pytest.raises(ValueError, match="images must be"):
        recognizer.recognize(images[:, :, :50])


def test_calls_from_several_threads_agree_with_one(recognizer, images):
    expected = [r.text for r in recognizer.recognize(images)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: [r.text for r in recognizer.recognize(images)], range(8)))
    assert all(r == expected for r in results)


def test_info_carries_the_training_summary(recognizer):
    assert recognizer.info["training"]["best_val_word_accuracy"] >= 0.875
    assert recognizer.info["alphabet"] == recognizer.alphabet.chars


def test_xla_buckets_give_the_plain_functions_logits_at_every_batch_size(tiny_trained, images):
    # Sizes at and between the compiled buckets are padded; above the largest, the plain traced
    # function runs. Every size must give the same logits as the plain function.
    result, _, _ = tiny_trained
    recognizer = Recognizer.load(result.artifact_uri, xla_batch_buckets=(1, 4))
    assert recognizer._xla_sizes == [1, 4], "XLA compilation failed at load"
    for count in (1, 2, 4, 7):
        batch = np.resize(images, (count, *images.shape[1:]))
        expected = recognizer._logits_fn(batch).numpy()
        np.testing.assert_allclose(recognizer.logits(batch), expected, rtol=1e-4, atol=1e-4)


def test_without_xla_buckets_the_plain_function_reads_the_same(tiny_trained, recognizer, images):
    result, _, _ = tiny_trained
    plain = Recognizer.load(result.artifact_uri, xla_batch_buckets=())
    assert plain._xla_sizes == []
    np.testing.assert_allclose(plain.logits(images), recognizer.logits(images), rtol=1e-4, atol=1e-4)
