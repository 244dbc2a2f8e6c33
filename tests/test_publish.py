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
