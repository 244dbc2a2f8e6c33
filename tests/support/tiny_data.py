"""Tiny labelled datasets for tests, rendered here with Pillow (no dependency on the generator).

``render_word`` draws a word in a packaged font, crops to the ink, scales it to the spec's height
(minus a margin) and pads it on the right to the spec's width: dark ink on white, uint8.
``write_dataset`` writes such samples as shards + manifest with ``wordocr.shards``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from wordocr import shards
from wordocr.alphabet import DEFAULT_ALPHABET, Alphabet
from wordocr.config import InputSpec

# Small input so a test model trains in seconds; still 2 * 8 + 1 <= 24 time steps.
TINY_SPEC = InputSpec(height=32, width=96, width_downsample=4, max_word_length=8)
TINY_WORDS = ("cat", "dog", "tree", "moon", "apple", "river", "book", "sun")


def font_path(package: str = "fontpkg_roboto", italic: bool = False) -> Path:
    """A .ttf file shipped by an installed ``fontpkg_*`` package."""
    root = Path(importlib.import_module(package).__file__).parent / "files"
    fonts = sorted(p for p in root.glob("*.ttf") if ("Italic" in p.name) == italic)
    if not fonts:
        raise FileNotFoundError(f"no {'italic ' if italic else ''}.ttf in {root}")
    return fonts[0]


def render_word(word: str, spec: InputSpec = TINY_SPEC, font: Path | None = None, shift: int = 0,
                size: int = 40, margin: int = 3) -> np.ndarray:
    """uint8 [spec.height, spec.width]: the word in dark ink on white, ink-cropped, scaled, left-aligned."""
    face = ImageFont.truetype(str(font or font_path()), size)
    left, top, right, bottom = face.getbbox(word)
    canvas = Image.new("L", (right - left + 8, bottom - top + 8), 255)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), word, font=face, fill=0)
    ink = np.asarray(canvas) < 128
    rows, cols = np.where(ink)
    crop = canvas.crop((cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))
    height = spec.height - 2 * margin
    width = min(spec.width - 2 * margin - shift, max(1, round(crop.width * height / crop.height)))
    crop = crop.resize((width, height), Image.Resampling.BILINEAR)
    out = Image.new("L", (spec.width, spec.height), 255)
    out.paste(crop, (margin + shift, margin))
    return np.asarray(out, dtype=np.uint8)


def make_samples(words: Sequence[str], copies: int = 1, spec: InputSpec = TINY_SPEC,
                 fonts: Sequence[tuple[str, bool]] = (("fontpkg_roboto", False),)) -> list[shards.Sample]:
    """``copies`` renderings of each word per font, shifted by a pixel or two so copies differ."""
    samples = []
    for package, italic in fonts:
        path = font_path(package, italic)
        name = f"{package.removeprefix('fontpkg_')}{'-italic' if italic else ''}"
        for copy in range(copies):
            for word in words:
                samples.append(shards.Sample(render_word(word, spec, path, shift=copy % 3), word, name))
    return samples


def write_dataset(samples: Sequence[shards.Sample], uri: str, split: str = "train",
                  spec: InputSpec = TINY_SPEC, alphabet: Alphabet = DEFAULT_ALPHABET, num_shards: int = 2) -> str:
    infos = [
        shards.write_shard(samples[i::num_shards], uri, i, num_shards) for i in range(num_shards)
    ]
    shards.write_manifest(
        shards.Manifest(split=split, input_spec=spec.to_dict(), alphabet=alphabet.chars, shards=infos,
                        params={"source": "tests/support/tiny_data.py"}),
        uri,
    )
    return uri


# A training recipe that reads all TINY_WORDS after about 30 of its 40 short epochs (~15 s on 2 cores).
def tiny_train_config(**overrides):
    from wordocr.model import TINY_MODEL_SIZE
    from wordocr.train import TrainConfig

    base = dict(epochs=40, batch_size=32, learning_rate=5e-3, warmup_epochs=1, steps_per_epoch=8, patience=0,
                model_size=TINY_MODEL_SIZE, seed=0)
    return TrainConfig(**{**base, **overrides})


def write_tiny_datasets(root: Path) -> tuple[str, str]:
    """(train, val) dataset folders: 4 shifted copies of each tiny word to train on, one to validate."""
    train_uri = write_dataset(make_samples(TINY_WORDS, copies=4), str(root / "train"))
    val_uri = write_dataset(make_samples(TINY_WORDS, copies=1), str(root / "val"), split="val", num_shards=1)
    return train_uri, val_uri


_TRAINED: dict[str, object] = {}


@pytest.fixture(name="tiny_trained")
def tiny_trained_fixture(tmp_path_factory):
    """(TrainResult, train_uri, val_uri) of one tiny run, trained once per test session and shared.

    To use it, import it into a test module (``from tests.support.tiny_data import tiny_trained_fixture``)
    and ask for ``tiny_trained``.
    """
    if "result" not in _TRAINED:
        from wordocr.train import train

        root = tmp_path_factory.mktemp("tiny-trained")
        train_uri, val_uri = write_tiny_datasets(root)
        result = train(train_uri, val_uri, str(root / "model"), tiny_train_config())
        _TRAINED["result"] = (result, train_uri, val_uri)
    return _TRAINED["result"]
