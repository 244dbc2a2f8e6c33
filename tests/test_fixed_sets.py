"""tools/fixed_sets.py: fixed test images stored before preprocessing, read again by any model."""

import json

import numpy as np
import pytest

from tests.support.tiny_data import TINY_WORDS, render_word, tiny_trained_fixture  # noqa: F401
from tools.fixed_sets import build, evaluate, load_set, main, save_set, set_path
from wordocr import generate
from wordocr.dataset_spec import DatasetSpec
from wordocr.preprocess import preprocess

SMALL = {("heldout", "clean"): 4, ("train", "hard"): 3}


def test_a_built_set_holds_the_images_the_generator_preprocessed(tmp_path):
    written = build(tmp_path, SMALL, seed=5)
    assert written == [set_path(tmp_path, "heldout", "clean"), set_path(tmp_path, "train", "hard")]
    for (font_set, tier), count in SMALL.items():
        images, words, fonts = load_set(set_path(tmp_path, font_set, tier))
        dataset = DatasetSpec("test", count, 5, tier=tier, font_set=font_set, num_shards=1)
        samples = list(generate.shard_samples(dataset, 0))
        assert words == [s.text for s in samples] and fonts == [s.font for s in samples]
        # The stored image is what the dataset's sample was made from, not a redraw.
        for image, sample in zip(images, samples, strict=True):
            np.testing.assert_array_equal(preprocess(image), sample.image)


def test_images_of_any_size_survive_the_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(3, 5), (40, 7), (1, 1), (12, 30)]]
    path = tmp_path / "set.npz"
    save_set(path, images, ["a", "bb", "c", "dd"], ["f1", "f2", "f3", "f4"])
    loaded, words, fonts = load_set(path)
    assert words == ["a", "bb", "c", "dd"] and fonts == ["f1", "f2", "f3", "f4"]
    for got, want in zip(loaded, images, strict=True):
        np.testing.assert_array_equal(got, want)
    assert [p.name for p in tmp_path.iterdir()] == ["set.npz"]  # no partial file left behind


@pytest.mark.slow
def test_eval_reads_the_sets_as_the_predictor_and_lists_what_it_misread(tmp_path, tiny_trained, capsys):
    from wordocr.recognizer import Recognizer

    result, _, _ = tiny_trained
    images = [render_word(w) for w in TINY_WORDS]
    labels = [*TINY_WORDS[:-1], "zzz"]  # the last image is labelled wrong on purpose
    save_set(tmp_path / "heldout-clean.npz", images, labels, ["roboto"] * len(labels))

    recognizer = Recognizer.load(result.artifact_uri)
    inputs = np.stack([preprocess(image, recognizer.spec) for image in images])
    for below in (0.0, 0.99):
        recognizer.second_look_below = below
        readings = [r.text for r in recognizer.recognize(inputs, top_k=1)]
        set_result = evaluate(result.artifact_uri, tmp_path, second_look_below=below)["heldout-clean"]
        errors = set_result["example_errors"]
        assert set_result["count"] == len(labels)
        assert [(e["truth"], e["predicted"]) for e in errors] == [
            (w, r) for w, r in zip(labels, readings, strict=True) if w != r
        ]
        assert errors[-1]["truth"] == "zzz"
        assert set_result["word_accuracy"] == pytest.approx(1 - len(errors) / len(labels))

    failures = tmp_path / "failures.json"
    assert main(["eval", result.artifact_uri, str(tmp_path), "--failures", str(failures)]) == 0
    assert "heldout-clean" in capsys.readouterr().out
    assert json.loads(failures.read_text())["heldout-clean"][-1]["truth"] == "zzz"


def test_eval_without_sets_says_to_build_them(tmp_path, capsys):
    assert main(["eval", "unused-model", str(tmp_path)]) == 2
    assert "build" in capsys.readouterr().err
