"""Publishing a model version: complete copies, a pointer written last, old version kept on failure."""

import json

import pytest

from wordocr import publish, storage


def _artifact(tmp_path, name="artifact"):
    artifact = tmp_path / name
    artifact.mkdir()
    (artifact / "model.keras").write_bytes(b"weights")
    (artifact / "spec.json").write_text(json.dumps({"format": 1}))
    return artifact


def test_publish_copies_the_artifact_and_points_at_it(tmp_path):
    root = tmp_path / "serving"
    uri = publish.publish_model(str(_artifact(tmp_path)), str(root), "word-ocr", {"word_accuracy": 0.97})

    pointer = publish.current_model(str(root), "word-ocr")
    assert pointer["uri"] == uri
    assert pointer["metrics"] == {"word_accuracy": 0.97}
    assert sorted(storage.list_names(uri)) == ["model.keras", "spec.json"]
    assert storage.read_bytes(storage.join(uri, "model.keras")) == b"weights"


def test_a_second_publish_is_a_new_version(tmp_path):
    root = tmp_path / "serving"
    first = publish.publish_model(str(_artifact(tmp_path)), str(root), "word-ocr")
    second = publish.publish_model(str(_artifact(tmp_path, "retrained")), str(root), "word-ocr")
    assert first != second
    assert publish.current_model(str(root), "word-ocr")["uri"] == second
    assert storage.exists(storage.join(first, "spec.json"))


def test_an_incomplete_artifact_is_refused_and_the_pointer_kept(tmp_path):
    root = tmp_path / "serving"
    good = publish.publish_model(str(_artifact(tmp_path)), str(root), "word-ocr")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.keras").write_bytes(b"half")

    with pytest.raises(FileNotFoundError, match=r"spec\.json"):
        publish.publish_model(str(broken), str(root), "word-ocr")
    assert publish.current_model(str(root), "word-ocr")["uri"] == good


def test_nothing_published_reads_as_none(tmp_path):
    assert publish.current_model(str(tmp_path), "word-ocr") is None


def test_a_publish_judged_against_the_served_version_replaces_it(tmp_path):
    root = tmp_path / "serving"
    assert publish.served_version(str(root), "word-ocr") == publish.NOTHING_SERVED
    first = publish.publish_model(str(_artifact(tmp_path)), str(root), "word-ocr", replacing=publish.NOTHING_SERVED)
    served = publish.served_version(str(root), "word-ocr")
    second = publish.publish_model(str(_artifact(tmp_path, "retrained")), str(root), "word-ocr", replacing=served)
    assert first != second and publish.current_model(str(root), "word-ocr")["uri"] == second


def test_a_publish_judged_against_another_version_is_refused_and_the_pointer_kept(tmp_path):
    """Another run published after this model was judged: it was never compared with that one."""
    root = tmp_path / "serving"
    judged_against = publish.served_version(str(root), "word-ocr")  # nothing yet
    meanwhile = publish.publish_model(str(_artifact(tmp_path)), str(root), "word-ocr")
    pointer = (root / "word-ocr" / publish.POINTER_NAME).read_bytes()

    with pytest.raises(publish.ServedModelChanged, match="judged against nothing served"):
        publish.publish_model(str(_artifact(tmp_path, "late")), str(root), "word-ocr", replacing=judged_against)
    assert (root / "word-ocr" / publish.POINTER_NAME).read_bytes() == pointer
    assert publish.current_model(str(root), "word-ocr")["uri"] == meanwhile
    # Refused before copying: no version folder of its own.
    names = sorted(p.name for p in (root / "word-ocr").iterdir())
    assert names == sorted([publish.POINTER_NAME, meanwhile.split("/")[-1]])


def test_a_version_published_while_copying_is_not_replaced_and_the_copy_is_removed(tmp_path, monkeypatch):
    root = tmp_path / "serving"
    judged = publish.served_version(str(root), "word-ocr")
    other = _artifact(tmp_path, "other")
    write_bytes = storage.write_bytes
    raced: list[str] = []
    racing: list[bool] = []

    def write_then_race(uri, data):
        write_bytes(uri, data)
        if uri.endswith("spec.json") and not racing:  # the copy is complete: another run publishes now
            racing.append(True)
            raced.append(publish.publish_model(str(other), str(root), "word-ocr"))

    monkeypatch.setattr(storage, "write_bytes", write_then_race)
    with pytest.raises(publish.ServedModelChanged):
        publish.publish_model(str(_artifact(tmp_path)), str(root), "word-ocr", replacing=judged)
    monkeypatch.undo()
    assert publish.current_model(str(root), "word-ocr")["uri"] == raced[0]
    versions = [p.name for p in (root / "word-ocr").iterdir() if p.name != publish.POINTER_NAME]
    leftovers = [v for v in versions if storage.list_names(str(root / "word-ocr" / v))]
    assert leftovers == [raced[0].split("/")[-1]]


def test_the_pointer_keeps_the_readings_the_next_model_is_judged_against(tmp_path):
    root = tmp_path / "serving"
    readings = {"test_set": {"seed": 11, "images_per_cell": 1000},
                "cells": {"heldout/hard": {"word_accuracy": 0.91, "cer": 0.02, "count": 1000}}}  # fmt: skip
    publish.publish_model(str(_artifact(tmp_path)), str(root), "word-ocr", metrics=readings)
    assert publish.current_model(str(root), "word-ocr")["metrics"] == readings
