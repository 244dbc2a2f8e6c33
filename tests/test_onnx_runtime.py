"""The artifact's ONNX graph: the same logits and readings as the Keras model, served without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.support.tiny_data import TINY_SPEC, TINY_WORDS, make_samples, tiny_trained_fixture  # noqa: F401
from wordocr import artifact
from wordocr.onnx_export import ONNX_FILE, export_artifact

LOGIT_TOLERANCE = 1e-4  # float32 sums in another order; the logits are O(10)


def _images(words=TINY_WORDS) -> np.ndarray:
    return np.stack([s.image for s in make_samples(words)])


def _without_onnx(src, dst):
    """A copy of the artifact at ``src`` as it was saved before artifacts carried model.onnx."""
    import shutil

    shutil.copytree(src, dst)
    (dst / ONNX_FILE).unlink()
    spec = json.loads((dst / artifact.SPEC_FILE).read_text())
    del spec["onnx"]
    (dst / artifact.SPEC_FILE).write_text(json.dumps(spec))
    return dst


def test_a_saved_artifact_carries_an_onnx_graph_named_in_its_spec(model_dir):
    spec = artifact.read_spec(str(model_dir))
    assert spec["onnx"]["file"] == ONNX_FILE and spec["onnx"]["opset"] >= 13
    assert (model_dir / ONNX_FILE).stat().st_size > 10_000


@pytest.mark.slow
def test_onnx_logits_equal_the_keras_models(model_dir):
    from wordocr.onnx_recognizer import OnnxRecognizer
    from wordocr.recognizer import Recognizer

    images = _images()
    keras_logits = Recognizer.load(str(model_dir)).logits(images)
    onnx_logits = OnnxRecognizer.load(str(model_dir)).logits(images)
    assert onnx_logits.shape == keras_logits.shape == (len(images), TINY_SPEC.time_steps, 27)
    assert np.abs(onnx_logits - keras_logits).max() < LOGIT_TOLERANCE
    # Batch 1 goes through Keras's XLA path, a different program: it must agree as well.
    assert np.abs(OnnxRecognizer.load(str(model_dir)).logits(images[:1]) - Recognizer.load(str(model_dir)).logits(
        images[:1])).max() < LOGIT_TOLERANCE


@pytest.mark.slow  # converts a model
def test_a_model_with_two_frames_per_step_exports_the_same_logits():
    import dataclasses

    import onnxruntime

    from wordocr.alphabet import Alphabet
    from wordocr.model import TINY_MODEL_SIZE, build_model
    from wordocr.onnx_export import keras_to_onnx

    spec = dataclasses.replace(TINY_SPEC, frames_per_step=2)
    model = build_model(spec, Alphabet(), TINY_MODEL_SIZE)
    session = onnxruntime.InferenceSession(keras_to_onnx(model, spec), providers=["CPUExecutionProvider"])
    images = _images().astype(np.float32)
    onnx_logits = session.run(None, {session.get_inputs()[0].name: images})[0]
    keras_logits = np.asarray(model(images, training=False))
    assert onnx_logits.shape == keras_logits.shape == (len(images), spec.time_steps, 27)
    assert np.abs(onnx_logits - keras_logits).max() < LOGIT_TOLERANCE


@pytest.mark.slow  # converts a model
def test_a_model_with_separable_convolutions_exports_the_same_logits():
    import dataclasses

    import onnxruntime

    from wordocr.alphabet import Alphabet
    from wordocr.model import TINY_MODEL_SIZE, build_model
    from wordocr.onnx_export import keras_to_onnx

    model = build_model(TINY_SPEC, Alphabet(), dataclasses.replace(TINY_MODEL_SIZE, separable_convs=True))
    assert any(type(layer).__name__ == "SeparableConv2D" for layer in model.layers)
    session = onnxruntime.InferenceSession(keras_to_onnx(model, TINY_SPEC), providers=["CPUExecutionProvider"])
    images = _images().astype(np.float32)
    onnx_logits = session.run(None, {session.get_inputs()[0].name: images})[0]
    keras_logits = np.asarray(model(images, training=False))
    assert onnx_logits.shape == keras_logits.shape == (len(images), TINY_SPEC.time_steps, 27)
    assert np.abs(onnx_logits - keras_logits).max() < LOGIT_TOLERANCE


@pytest.mark.slow
def test_a_trained_model_reads_the_same_words_on_both_runtimes(tiny_trained):
    from wordocr.onnx_recognizer import OnnxRecognizer
    from wordocr.recognizer import Recognizer

    uri = tiny_trained[0].artifact_uri
    images = _images()
    keras_reader, onnx_reader = Recognizer.load(uri), OnnxRecognizer.load(uri)
    assert onnx_reader.language_model is not None  # the spelling model comes with the artifact
    for top_k in (0, 3):
        by_keras, by_onnx = keras_reader.recognize(images, top_k), onnx_reader.recognize(images, top_k)
        assert [r.text for r in by_onnx] == [r.text for r in by_keras]
        assert [r.top_paths for r in by_onnx] == [r.top_paths for r in by_keras]
        assert np.allclose([r.confidence for r in by_onnx], [r.confidence for r in by_keras], atol=1e-4)
    assert sum(r.text == w for r, w in zip(onnx_reader.recognize(images), TINY_WORDS, strict=True)) >= len(
        TINY_WORDS) - 1


@pytest.mark.slow  # converts the model again
def test_an_artifact_saved_before_onnx_is_exported_by_the_cli(model_dir, tmp_path):
    from wordocr.onnx_export import main

    old = _without_onnx(model_dir, tmp_path / "old")
    assert main([str(old)]) == 0
    assert (old / ONNX_FILE).exists()
    assert artifact.read_spec(str(old))["onnx"]["file"] == ONNX_FILE
    assert export_artifact(str(old)) is False  # already there: left alone


@pytest.mark.slow
def test_an_artifact_without_onnx_is_converted_at_load_when_tensorflow_is_here(model_dir, tmp_path):
    from wordocr.onnx_recognizer import OnnxRecognizer
    from wordocr.recognizer import Recognizer

    old = _without_onnx(model_dir, tmp_path / "old")
    images = _images()
    assert np.abs(OnnxRecognizer.load(str(old)).logits(images) - Recognizer.load(str(old)).logits(images)).max() < (
        LOGIT_TOLERANCE)
    assert not (old / ONNX_FILE).exists()  # the artifact is read, never written, at load


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def test_the_onnx_reader_never_imports_tensorflow(model_dir):
    done = _run_python(f"""
        import sys
        import numpy as np
        from wordocr.recognizer import load_reader
        reader = load_reader({str(model_dir)!r}, runtime="onnx")
        result = reader.recognize(np.full((2, {TINY_SPEC.height}, {TINY_SPEC.width}), 255, np.uint8))
        assert len(result) == 2
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf2onnx"))
        print("HEAVY", heavy)
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "HEAVY []" in done.stdout


def test_without_tensorflow_an_artifact_without_onnx_fails_saying_how_to_export_it(model_dir, tmp_path):
    old = _without_onnx(model_dir, tmp_path / "old")
    done = _run_python(f"""
        import importlib.abc, sys

        class NoTensorFlow(importlib.abc.MetaPathFinder):  # as in the predictor's image
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx"):
                    raise ModuleNotFoundError(name)
                return None

        sys.meta_path.insert(0, NoTensorFlow())
        from wordocr.onnx_recognizer import MissingOnnxGraph, OnnxRecognizer
        try:
            OnnxRecognizer.load({str(old)!r})
        except MissingOnnxGraph as exc:
            print("REFUSED", exc)
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REFUSED" in done.stdout
    assert f"python -m wordocr.onnx_export {old}" in done.stdout


def test_a_batch_larger_than_one_call_is_read_in_chunks_with_the_same_logits(model_dir, monkeypatch):
    from wordocr import onnx_recognizer
    from wordocr.onnx_recognizer import OnnxRecognizer

    reader = OnnxRecognizer.load(str(model_dir))
    images = _images()
    whole = reader.logits(images)
    monkeypatch.setattr(onnx_recognizer, "MAX_IMAGES_PER_CALL", 3)
    calls = []
    run = reader._session.run
    monkeypatch.setattr(reader, "_session", type("Spy", (), {"run": lambda self, *a: calls.append(a) or run(*a)})())
    chunked = reader.logits(images)
    assert [len(feed[onnx_recognizer.INPUT_NAME]) for _, feed in calls] == [3, 3, 2]
    assert np.abs(chunked - whole).max() < LOGIT_TOLERANCE
