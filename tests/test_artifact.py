"""Model artifacts: a save -> load round trip reads the same, and spec.json says everything."""

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.support.tiny_data import TINY_SPEC, TINY_WORDS, make_samples
from wordocr import artifact
from wordocr.alphabet import Alphabet
from wordocr.model import TINY_MODEL_SIZE, build_model

ALPHABET = Alphabet()


@dataclass
class Saved:
    model: keras.Model
    path: Path
    write_order: list[str]  # the file names save_artifact wrote, in order


@pytest.fixture
def model():
    keras.utils.set_random_seed(1)
    return build_model(TINY_SPEC, ALPHABET, TINY_MODEL_SIZE)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Saved:
    """One artifact, saved once for the tests that read it (every save converts the model to
    ONNX): a model compiled with its optimizer built, a spelling model and a training summary,
    with the order of its writes recorded."""
    keras.utils.set_random_seed(1)
    model = build_model(TINY_SPEC, ALPHABET, TINY_MODEL_SIZE)
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    path = tmp_path_factory.mktemp("artifact") / "m"
    order: list[str] = []
    upload_file, write_bytes = artifact.storage.upload_file, artifact.storage.write_bytes
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(artifact.storage, "upload_file",
                      lambda local, uri: (order.append(uri.rsplit("/", 1)[-1]), upload_file(local, uri)))
        patch.setattr(artifact.storage, "write_bytes",
                      lambda uri, data: (order.append(uri.rsplit("/", 1)[-1]), write_bytes(uri, data)))
        artifact.save_artifact(model, str(path), TINY_SPEC, ALPHABET, {"training": {"epochs": 3}},
                               language_model=_small_spelling_model())
    return Saved(model, path, order)


def test_round_trip_gives_identical_logits(saved):
    images = np.stack([s.image for s in make_samples(TINY_WORDS)]).astype(np.float32)
    loaded, spec, alphabet, info = artifact.load_artifact(str(saved.path))
    assert spec == TINY_SPEC and alphabet == ALPHABET
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(images, training=False)),
        keras.ops.convert_to_numpy(saved.model(images, training=False)),
    )
    assert info["training"] == {"epochs": 3}


def test_spec_json_describes_input_alphabet_and_blank(model_dir, untrained_model):
    spec = json.loads((model_dir / "spec.json").read_text())
    assert spec["format"] == artifact.FORMAT
    assert spec["input_spec"] == TINY_SPEC.to_dict()
    assert spec["alphabet"] == ALPHABET.chars
    assert spec["blank_index"] == len(ALPHABET.chars) == 26
    assert spec["model_name"] == untrained_model.name and spec["created"]
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.keras", "model.onnx", "spec.json"]


def test_saved_model_has_no_optimizer_state(saved):
    assert saved.model.optimizer.built  # the model saved had optimizer state to leave out
    with zipfile.ZipFile(saved.path / "model.keras") as zipped:
        weights = zipped.read("model.weights.h5")
    assert b"optimizer" not in weights
    loaded, *_ = artifact.load_artifact(str(saved.path))
    assert getattr(loaded, "optimizer", None) is None


def test_spec_json_is_written_last(saved):
    order = saved.write_order
    assert order[-1] == "spec.json" and {"model.keras", "model.onnx", "char_lm.npz"} <= set(order)


def _small_spelling_model():
    from wordocr.char_lm import CharLanguageModel

    return CharLanguageModel.build(["game", "gamut", "dog"], ALPHABET, weight=0.3)


def test_the_spelling_model_travels_with_the_artifact(saved, model_dir):
    spelling = _small_spelling_model()
    doc = artifact.read_spec(str(saved.path))
    assert doc["language_model"]["file"] == "char_lm.npz" and doc["language_model"]["weight"] == 0.3
    loaded = artifact.load_language_model(str(saved.path), doc)
    np.testing.assert_array_equal(loaded.log_probs, spelling.log_probs)
    assert (loaded.order, loaded.weight) == (spelling.order, spelling.weight)
    # Without one (and for artifacts written before it existed) the image alone decides.
    doc = artifact.read_spec(str(model_dir))
    assert "language_model" not in doc and artifact.load_language_model(str(model_dir), doc) is None


def test_an_artifact_without_spec_json_is_incomplete(saved, tmp_path):
    shutil.copytree(saved.path, tmp_path, dirs_exist_ok=True)
    (tmp_path / "spec.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"spec\.json"):
        artifact.load_artifact(str(tmp_path))


def test_an_artifact_with_the_blank_first_is_refused(saved, tmp_path):
    shutil.copytree(saved.path, tmp_path, dirs_exist_ok=True)
    spec = json.loads((tmp_path / "spec.json").read_text())
    (tmp_path / "spec.json").write_text(json.dumps({**spec, "blank_index": 0}))
    with pytest.raises(ValueError, match="blank"):
        artifact.load_artifact(str(tmp_path))


@pytest.mark.slow  # converts its own model
def test_a_mixed_precision_model_is_saved_in_float32(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = build_model(TINY_SPEC, ALPHABET, TINY_MODEL_SIZE)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.get_layer("bilstm1").compute_dtype == "float16"
    artifact.save_artifact(mixed, str(tmp_path), TINY_SPEC, ALPHABET)
    loaded, *_ = artifact.load_artifact(str(tmp_path))
    assert {layer.compute_dtype for layer in loaded.layers} == {"float32"}
    assert loaded.get_layer("bilstm1").forward_layer.compute_dtype == "float32"


def test_round_trip_through_gcs(gcs_server, model):
    uri = gcs_server.uri("models", "tiny")
    artifact.save_artifact(model, uri, TINY_SPEC, ALPHABET, {"note": "gcs"}, language_model=_small_spelling_model())
    loaded, spec, alphabet, info = artifact.load_artifact(uri)
    spelling = artifact.load_language_model(uri, info)
    np.testing.assert_array_equal(spelling.log_probs, _small_spelling_model().log_probs)
    images = np.stack([s.image for s in make_samples(TINY_WORDS[:2])]).astype(np.float32)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(images, training=False)),
        keras.ops.convert_to_numpy(model(images, training=False)),
    )
    assert (spec, alphabet, info["note"]) == (TINY_SPEC, ALPHABET, "gcs")
