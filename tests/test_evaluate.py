"""Evaluation of an artifact on a dataset: overall, per length, per font, and example errors."""

import json

import pytest

from tests.support.tiny_data import (  # noqa: F401
    TINY_WORDS,
    font_path,
    make_samples,
    render_word,
    tiny_trained_fixture,
    write_dataset,
)
from wordocr import shards
from wordocr.evaluate import evaluate, main

pytestmark = pytest.mark.slow


def test_evaluate_breaks_accuracy_down_by_length_and_font(tmp_path, tiny_trained):
    result, _, _ = tiny_trained
    # The trained font plus its italic, which the model never saw.
    samples = make_samples(TINY_WORDS, fonts=(("fontpkg_roboto", False), ("fontpkg_roboto", True)))
    data = write_dataset(samples, str(tmp_path / "test"), split="test")
    metrics = evaluate(result.artifact_uri, data, batch_size=5)

    assert metrics["count"] == 2 * len(TINY_WORDS)
    assert set(metrics["per_font"]) == {"roboto", "roboto-italic"}
    assert metrics["per_font"]["roboto"]["word_accuracy"] >= 0.875
    assert sum(v["count"] for v in metrics["per_length"].values()) == metrics["count"]
    assert set(metrics["per_length"]) == {str(len(w)) for w in TINY_WORDS}
    overall = (metrics["per_font"]["roboto"]["word_accuracy"] + metrics["per_font"]["roboto-italic"]["word_accuracy"])
    assert metrics["word_accuracy"] == pytest.approx(overall / 2)
    assert metrics["error_count"] == round((1 - metrics["word_accuracy"]) * metrics["count"])
    for error in metrics["example_errors"]:
        assert error["truth"] != error["predicted"]


def test_cli_writes_metrics_json(tmp_path, tiny_trained):
    result, _, val_uri = tiny_trained
    out = tmp_path / "metrics.json"
    main(["--model", result.artifact_uri, "--data", val_uri, "--out", str(out)])
    metrics = json.loads(out.read_text())
    assert metrics["count"] == len(TINY_WORDS) and metrics["word_accuracy"] >= 0.875


def test_evaluate_reports_accuracy_per_family_style_of_face_and_word_class(tmp_path, tiny_trained):
    result, _, _ = tiny_trained
    # The trained face and a condensed one it never saw, each sample named as the generator names faces.
    samples = []
    for package, family in (("fontpkg_roboto", "roboto"), ("fontpkg_pt_sans_narrow", "pt-sans-narrow")):
        path = font_path(package)
        samples += [shards.Sample(render_word(word, font=path), word, f"{family}/{path.name}") for word in TINY_WORDS]
    data = write_dataset(samples, str(tmp_path / "test"), split="test")
    metrics = evaluate(result.artifact_uri, data, batch_size=5)

    assert {k: v["count"] for k, v in metrics["per_family"].items()} == {"roboto": 8, "pt-sans-narrow": 8}
    assert {k: v["count"] for k, v in metrics["per_style"].items()} == {"regular": 8, "condensed": 8}
    # tree, moon, apple, book: doubled; cat, tree, apple, river: thin; dog, sun: neither (each in both faces).
    classes = {k: v["count"] for k, v in metrics["per_word_class"].items()}
    assert classes == {"doubled_letter": 8, "thin_letter": 8, "other": 4}
    assert metrics["per_family"]["roboto"]["word_accuracy"] >= 0.875
    right = sum(v["word_accuracy"] * v["count"] for v in metrics["per_family"].values())
    assert right == pytest.approx(metrics["word_accuracy"] * metrics["count"])


def test_text_classes_name_case_digits_and_apostrophes():
    from wordocr.evaluate import breakdowns, text_classes

    assert text_classes("game") == ("lower",)
    assert text_classes("Game") == ("title",)
    assert text_classes("DON'T") == ("upper", "apostrophe")
    assert text_classes("2nd") == ("lower", "digits")
    words = ["game", "Game", "GAME", "model2"]
    per_text = breakdowns(["game", "game", "GAME", "model"], words, ["roboto/x.ttf"] * 4)["per_text"]
    assert {k: (v["count"], v["word_accuracy"]) for k, v in per_text.items()} == {
        "lower": (2, 0.5), "title": (1, 0.0), "upper": (1, 1.0), "digits": (1, 0.0)
    }  # fmt: skip
