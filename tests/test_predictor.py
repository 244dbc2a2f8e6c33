"""The predictor's pieces that need no model: which artifact it loads, and how it refuses to start."""

from __future__ import annotations

import json

import pytest

from serving.__main__ import main, parse_args
from wordocr import publish
from wordocr.publish import resolve_artifact_uri


def _artifact(folder):
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"weights")
    (folder / "spec.json").write_text("{}")
    return folder


def test_an_artifact_folder_is_loaded_as_is(tmp_path):
    artifact = _artifact(tmp_path / "artifact")
    assert resolve_artifact_uri(str(artifact)) == str(artifact)


def test_a_published_model_folder_loads_its_current_version(tmp_path):
    root = tmp_path / "serving"
    version_uri = publish.publish_model(str(_artifact(tmp_path / "a1")), str(root), "word-ocr")
    publish.publish_model(str(_artifact(tmp_path / "a2")), str(root), "word-ocr")
    latest = publish.current_model(str(root), "word-ocr")["uri"]
    assert latest != version_uri
    assert resolve_artifact_uri(str(root / "word-ocr")) == latest


def test_a_pointer_without_a_local_copy_is_followed_to_its_uri(tmp_path):
    # KServe's storage initializer may copy only current.json; the pointer's URI is then used.
    model_dir = tmp_path / "mnt"
    model_dir.mkdir()
    elsewhere = _artifact(tmp_path / "bucket" / "v1")
    (model_dir / publish.POINTER_NAME).write_text(json.dumps({"version": "v1", "uri": str(elsewhere)}))
    assert resolve_artifact_uri(str(model_dir)) == str(elsewhere)


def test_a_folder_without_a_model_is_an_error_that_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a model artifact"):
        resolve_artifact_uri(str(tmp_path))


def test_entry_point_defaults_and_strict_flags():
    args = parse_args(["--http_port", "9000", "--enable_grpc", "false"])
    assert (args.model_dir, args.model_name) == ("/mnt/models", "word-ocr")
    assert (args.http_port, args.enable_grpc) == (9000, False)
    with pytest.raises(SystemExit):
        parse_args(["--model-dir", "/tmp/x"])  # a typo must not start a server on the default model


def test_entry_point_refuses_several_workers():
    with pytest.raises(SystemExit, match="--workers 1"):
        main(["--workers", "2"])
