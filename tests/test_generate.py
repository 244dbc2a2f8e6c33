import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from wordocr import generate, shards
from wordocr.alphabet import DEFAULT_ALPHABET
from wordocr.config import DEFAULT_INPUT_SPEC
from wordocr.dataset_spec import DatasetSpec
from wordocr.fonts import face_by_name
from wordocr.preprocess import preprocess
from wordocr.render import render_request_word, render_word
from wordocr.words import load_words, split_words


def _shard_hash(tmp_path: Path, seed: int, name: str) -> str:
    info = generate.generate_shard(str(tmp_path / name), DatasetSpec("train", 30, seed, num_shards=3), 1)
    return info.sha256


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    first = _shard_hash(tmp_path, 7, "a")
    assert first == _shard_hash(tmp_path, 7, "b")
    assert first != _shard_hash(tmp_path, 8, "c")


def test_shards_differ_and_labels_are_valid_and_from_the_split():
    dataset = DatasetSpec("val", 40, seed=3, tier="hard", num_shards=2)
    samples, others = list(generate.shard_samples(dataset, 0)), list(generate.shard_samples(dataset, 1))
    val_words = set(split_words(load_words())["val"])
    assert len(samples) == 20
    assert [s.text for s in samples] != [s.text for s in others]
    for sample in samples:
        assert sample.text in val_words
        assert DEFAULT_ALPHABET.is_valid(sample.text, DEFAULT_INPUT_SPEC.max_word_length)
        assert sample.image.shape == (DEFAULT_INPUT_SPEC.height, DEFAULT_INPUT_SPEC.width)
        assert sample.image.dtype == np.uint8


def _blurred(image: np.ndarray) -> np.ndarray:
    # Blur so that the comparison tolerates the sub-pixel shifts of rendering at another size.
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(2)), np.float32)


def test_recorded_label_and_font_match_the_image():
    """Re-render each clean sample's recorded word in its recorded font: it matches the image
    far better than the same font spelling the other samples' words."""
    samples = list(generate.shard_samples(DatasetSpec("train", 16, seed=5, tier="clean", num_shards=1), 0))
    for sample in samples:
        face = face_by_name(sample.font)
        target = _blurred(sample.image)

        def distance(word, face=face, target=target):
            redrawn = preprocess(render_word(word, face, 48, (10, 10, 10, 10)))
            return float(np.abs(_blurred(redrawn) - target).mean())

        others = [distance(other.text) for other in samples if other.text != sample.text]
        assert distance(sample.text) < 0.75 * float(np.median(others)), sample


def test_dataset_is_the_same_for_any_number_of_workers(tmp_path):
    dataset = DatasetSpec("train", 24, seed=11, num_shards=2)
    one = generate.generate_dataset(str(tmp_path / "w1"), dataset, workers=1)
    two = generate.generate_dataset(str(tmp_path / "w2"), dataset, workers=2)
    assert [s.sha256 for s in one.shards] == [s.sha256 for s in two.shards]
    assert one.count == 24 and one.params == two.params


def test_dataset_has_manifest_preview_and_reads_back(tmp_path):
    out = tmp_path / "data"
    dataset = DatasetSpec("test", 10, seed=1, tier="noisy", font_set="heldout", num_shards=2)
    manifest = generate.generate_dataset(str(out), dataset)
    assert shards.read_manifest(str(out)).to_json() == manifest.to_json()
    assert manifest.params["font_set"] == "heldout" and manifest.params["tier"] == "noisy"
    assert (out / generate.PREVIEW_NAME).read_bytes().startswith(b"\x89PNG")
    samples = list(shards.iter_samples(str(out)))
    assert len(samples) == 10
    assert all(face_by_name(s.font).family in manifest.params["font_families"] for s in samples)
    for info in manifest.shards:
        assert hashlib.sha256((out / info.name).read_bytes()).hexdigest() == info.sha256


def test_a_written_dataset_names_its_alphabet_and_text_and_a_lower_one_keeps_its_old_params(tmp_path):
    from wordocr.config import LOWER_CASE, WRITTEN

    written = generate.generate_dataset(str(tmp_path / "w"), DatasetSpec("test", 40, seed=4, text="upper",
                                                                         num_shards=1), workers=1)  # fmt: skip
    assert written.alphabet == WRITTEN and written.params["text"] == "upper"
    labels = [s.text for s in shards.iter_samples(str(tmp_path / "w"))]
    assert all(label == label.upper() for label in labels) and any(len(label) > 1 for label in labels)
    lower = generate.dataset_params(DatasetSpec("test", 40, seed=4))
    # Datasets made before texts existed have no "text" param; a lower-case one made now matches them.
    assert "text" not in lower and DatasetSpec("test", 40, seed=4).alphabet == LOWER_CASE


def test_regenerating_with_same_params_is_a_no_op_and_other_params_are_refused(tmp_path, monkeypatch):
    out = str(tmp_path / "data")
    dataset = DatasetSpec("train", 6, seed=2, num_shards=1)
    first = generate.generate_dataset(out, dataset, workers=1)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated")

    monkeypatch.setattr(generate, "_generate_shards", fail)
    assert generate.generate_dataset(out, dataset, workers=1).to_json() == first.to_json()
    with pytest.raises(FileExistsError, match="seed"):
        generate.generate_dataset(out, replace(dataset, seed=3), workers=1)


def test_a_failed_run_leaves_no_manifest_and_a_rerun_completes(tmp_path, monkeypatch):
    out = tmp_path / "data"
    real = generate.draw_sample
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "draw_sample", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate.generate_dataset(str(out), DatasetSpec("train", 12, seed=4, num_shards=2), workers=1)
    assert not (out / shards.MANIFEST_NAME).exists()
    with pytest.raises(FileNotFoundError):
        shards.read_manifest(str(out))
    monkeypatch.setattr(generate, "draw_sample", real)
    assert generate.generate_dataset(str(out), DatasetSpec("train", 12, seed=4, num_shards=2), workers=1).count == 12


def test_request_rendering_is_deterministic_clean_and_readable():
    image = render_request_word("hello")
    assert np.array_equal(image, render_request_word("hello"))
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255
    assert image[0].min() == 255 and image[:, 0].min() == 255  # margins all round


def test_cli_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        generate.main(["--help"])
    assert exc.value.code == 0
    assert "--font-set" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        generate.main(["--out", "x", "--samples", "1", "--tier", "impossible"])


def test_no_blank_or_solid_image_is_ever_written_in_the_hard_tier():
    samples = list(generate.shard_samples(DatasetSpec("train", 300, seed=21, tier="hard", num_shards=1), 0))
    assert len(samples) == 300
    assert all(generate.shows_ink(s.image) for s in samples)


def test_a_blank_draw_is_redrawn_from_the_same_rng(monkeypatch):
    real = generate.preprocess
    calls = []

    def blank_first(image, spec):
        calls.append(1)
        return np.full((spec.height, spec.width), 255, np.uint8) if len(calls) == 1 else real(image, spec)

    monkeypatch.setattr(generate, "preprocess", blank_first)
    dataset = DatasetSpec("train", 1, seed=5, tier="noisy", num_shards=1)
    first = next(generate.shard_samples(dataset, 0))
    calls.clear()
    again = next(generate.shard_samples(dataset, 0))
    assert len(calls) == 2 and generate.shows_ink(first.image)
    assert first.text == again.text and np.array_equal(first.image, again.image)  # deterministic


def test_shows_ink_refuses_blank_and_solid_images():
    blank = np.full((DEFAULT_INPUT_SPEC.height, DEFAULT_INPUT_SPEC.width), 255, np.uint8)
    assert not generate.shows_ink(blank)
    solid = blank.copy()
    solid[2:-2, 2:100] = 0
    assert not generate.shows_ink(solid)
    assert generate.shows_ink(preprocess(render_request_word("ink")))
