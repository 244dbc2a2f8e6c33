"""Generate a labelled dataset of word images: words x fonts x degradations -> shards + manifest.

A dataset is described by one ``DatasetSpec`` (split, size, seed, tier, font set, shards, input
geometry). Each shard is a pure function of the spec and its index, so shards can be made in
parallel by separate processes or pipeline tasks and the output does not depend on how many
workers made it. The manifest is written last: a dataset
folder without one is incomplete and readers refuse it.

    python -m wordocr.generate --out out/data/train --split train --samples 20000 --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import math
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import islice

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from wordocr import shards, storage
from wordocr.config import LOWER_CASE, InputSpec
from wordocr.dataset_spec import TEXTS, DatasetSpec
from wordocr.degrade import TIERS, degrade, sample_layout
from wordocr.fonts import FONT_SETS, FontFace, font_faces, load_font
from wordocr.preprocess import preprocess
from wordocr.render import render_word, request_face
from wordocr.words import RANDOM_STRING_FRACTION, SPLITS, WordSampler, load_words, split_words
from wordocr.written import CASES, WrittenWords

log = logging.getLogger(__name__)

GENERATOR_VERSION = "wordocr.generate/3"  # bump when the same params would give other images
PREVIEW_NAME = "preview.png"
PREVIEW_SAMPLES = 48
PREVIEW_COLUMNS = 3
_PROGRESS_EVERY = 16
# A sample is drawn again when its model input is near-blank or near-solid (see shows_ink).
INK_LEVEL = 128
MIN_INK_SHARE = 0.002
MAX_INK_SHARE = 0.85
MAX_DRAWS = 20  # samples between progress reports from worker processes


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def shard_rng(dataset: DatasetSpec, shard_index: int) -> np.random.Generator:
    """The random stream of one shard: independent of every other shard and of process layout."""
    entropy = [
        int(dataset.seed),
        _stable_int(dataset.split),
        _stable_int(dataset.tier),
        _stable_int(dataset.font_set),
        int(shard_index),
    ]
    return np.random.default_rng(np.random.SeedSequence(entropy))


@lru_cache(maxsize=8)
def _word_sampler(split: str, max_length: int, text: str = "lower") -> Callable[[np.random.Generator], str]:
    splits = split_words(load_words(1, max_length))
    if split == "train":
        # Random strings only in training, never spelling a held-out word.
        forbidden = [w for name in SPLITS if name != "train" for w in splits[name]]
        words = WordSampler(splits["train"], RANDOM_STRING_FRACTION, forbidden, max_length, LOWER_CASE)
    else:
        words = WordSampler(splits[split], 0.0, (), max_length, LOWER_CASE)
    if text == "lower":
        return words
    if text == "written":
        return WrittenWords(words, splits[split], max_length)
    single_case = tuple(float(case == text) for case in CASES)
    return WrittenWords(words, splits[split], max_length, single_case, digit_share=0.0, apostrophe_share=0.0)


@lru_cache(maxsize=4)
def _faces_by_family(font_set: str) -> tuple[tuple[FontFace, ...], ...]:
    # Family first, then a face of it: families with 18 static files weigh no more than others.
    grouped: dict[str, list[FontFace]] = {}
    for face in font_faces(font_set):
        grouped.setdefault(face.family, []).append(face)
    return tuple(tuple(faces) for faces in grouped.values())


def draw_sample(
    rng: np.random.Generator,
    sampler: Callable[[np.random.Generator], str],
    families: tuple[tuple[FontFace, ...], ...],
    tier: str,
    spec: InputSpec,
) -> tuple[np.ndarray, shards.Sample]:
    """One labelled image: word, face, layout, render, degrade, preprocess; returned with the
    degraded image before preprocessing (what a user would send: ``tools/fixed_sets.py``).

    A draw whose model input came out (almost) blank or (almost) solid ink is thrown away and
    drawn again from the same ``rng``, so the result stays a pure function of the seed and no
    label is ever written over an image that does not show it.
    """
    for _ in range(MAX_DRAWS):
        word = sampler(rng)
        family = families[rng.integers(len(families))]
        face = family[rng.integers(len(family))]
        layout = sample_layout(tier, rng)
        raw = degrade(render_word(word, face, layout.size, layout.margins), layout, rng)
        image = preprocess(raw, spec)
        if shows_ink(image):
            return raw, shards.Sample(image, word, face.name)
        log.debug("redrawing %r in %s: its image is blank or solid", word, face.name)
    raise RuntimeError(f"no readable sample in {MAX_DRAWS} draws for tier {tier!r}")


def shows_ink(image: np.ndarray) -> bool:
    """Whether a model input holds some ink and some paper: at least MIN_INK_SHARE of its
    pixels dark, and at most MAX_INK_SHARE of the pixels in the box around the ink."""
    dark = image < INK_LEVEL
    share = dark.mean()
    if share < MIN_INK_SHARE:
        return False
    rows = np.flatnonzero(dark.any(axis=1))
    columns = np.flatnonzero(dark.any(axis=0))
    box = dark[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    return bool(box.mean() <= MAX_INK_SHARE)


def shard_samples(dataset: DatasetSpec, shard_index: int) -> Iterator[shards.Sample]:
    """The samples of one shard, lazily, in order."""
    for _, sample in shard_draws(dataset, shard_index):
        yield sample


def shard_draws(dataset: DatasetSpec, shard_index: int) -> Iterator[tuple[np.ndarray, shards.Sample]]:
    """The samples of one shard, each with its degraded image before preprocessing
    (``draw_sample``)."""
    size = dataset.shard_size(shard_index)
    sampler = _word_sampler(dataset.split, dataset.input_spec.max_word_length, dataset.text)
    families = _faces_by_family(dataset.font_set)
    rng = shard_rng(dataset, shard_index)
    for _ in range(size):
        yield draw_sample(rng, sampler, families, dataset.tier, dataset.input_spec)


def generate_shard(
    out_uri: str,
    dataset: DatasetSpec,
    shard_index: int,
    *,
    on_samples: Callable[[int], None] | None = None,
) -> shards.ShardInfo:
    """Write shard ``shard_index`` of ``dataset`` (its share of the samples, not all of them).

    ``on_samples`` is told how many samples were made, every few, for a progress bar."""
    dataset.shard_size(shard_index)  # refused before anything is written
    samples = shard_samples(dataset, shard_index)
    if on_samples is not None:
        samples = _counted(samples, on_samples)
    return shards.write_shard(samples, out_uri, shard_index, dataset.num_shards)


def _counted(samples: Iterator[shards.Sample], report: Callable[[int], None]) -> Iterator[shards.Sample]:
    pending = 0
    for sample in samples:
        yield sample
        pending += 1
        if pending == _PROGRESS_EVERY:
            report(pending)
            pending = 0
    if pending:
        report(pending)


def dataset_params(dataset: DatasetSpec) -> dict:
    """What determines a dataset's bytes; a dataset with equal params need not be made again."""
    faces = font_faces(dataset.font_set)
    split = dataset.split
    params = {
        "generator": GENERATOR_VERSION,
        "seed": int(dataset.seed),
        "split": split,
        "tier": dataset.tier,
        "font_set": dataset.font_set,
        "num_samples": int(dataset.num_samples),
        "num_shards": int(dataset.num_shards),
        "input_spec": dataset.input_spec.to_dict(),
        "font_families": sorted({face.family for face in faces}),
        "font_faces": [face.name for face in faces],
        "words": len(split_words(load_words(1, dataset.input_spec.max_word_length))[split]),
        "random_string_fraction": RANDOM_STRING_FRACTION if split == "train" else 0.0,
    }
    if dataset.text != "lower":  # so a lower-case dataset made before texts existed keeps its params
        params["text"] = dataset.text
    return params


def generate_dataset(out_uri: str, dataset: DatasetSpec, workers: int = 2) -> shards.Manifest:
    """Generate every shard (``workers`` processes), a preview, then the manifest, last."""
    params = dataset_params(dataset)
    existing = _existing_manifest(out_uri)
    if existing is not None:
        if existing.params == params:
            log.info("dataset at %s already has these params; not regenerating", out_uri)
            return existing
        raise FileExistsError(
            f"{out_uri} already holds a dataset made with other params; write to a new location. "
            f"Differences: {_param_differences(existing.params, params)}"
        )

    started = time.perf_counter()
    infos = _generate_shards(out_uri, dataset, workers)
    elapsed = time.perf_counter() - started
    count = dataset.num_samples
    log.info("generated %d samples in %.1f s (%.0f images/s)", count, elapsed, count / max(elapsed, 1e-9))
    return finish_dataset(out_uri, dataset, infos)


def finish_dataset(out_uri: str, dataset: DatasetSpec, infos: list[shards.ShardInfo]) -> shards.Manifest:
    """Write the preview, then the manifest, over shards already in ``out_uri`` (made by
    ``generate_shard``, perhaps in separate processes or pipeline tasks).

    ``infos`` may come in any order; every shard of the dataset must be among them, once.
    """
    num_shards = dataset.num_shards
    by_name = {info.name: info for info in infos}
    expected = [shards.shard_name(i, num_shards) for i in range(num_shards)]
    if len(infos) != num_shards or sorted(by_name) != expected:
        raise ValueError(f"expected shards {expected}, got {sorted(info.name for info in infos)}")
    infos = [by_name[name] for name in expected]
    preview = _preview_samples(dataset)
    storage.write_bytes(storage.join(out_uri, PREVIEW_NAME), contact_sheet(preview))
    manifest = shards.Manifest(
        split=dataset.split,
        input_spec=dataset.input_spec.to_dict(),
        alphabet=dataset.alphabet,
        shards=infos,
        params=dataset_params(dataset),
    )
    shards.write_manifest(manifest, out_uri)
    manifest_uri = storage.join(out_uri, shards.MANIFEST_NAME)
    log.info("wrote %s (%d samples in %d shards)", manifest_uri, dataset.num_samples, num_shards)
    return manifest


def _existing_manifest(out_uri: str) -> shards.Manifest | None:
    if not storage.exists(storage.join(out_uri, shards.MANIFEST_NAME)):
        return None
    return shards.read_manifest(out_uri)


def _param_differences(old: dict, new: dict) -> dict:
    keys = sorted(set(old) | set(new))
    return {k: (old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k) and k != "font_faces"}


_worker_progress = None  # a shared counter, set in each worker process


def _init_worker(counter) -> None:
    global _worker_progress
    _worker_progress = counter
    logging.basicConfig(level=logging.WARNING)


def _report_to_parent(count: int) -> None:
    with _worker_progress.get_lock():
        _worker_progress.value += count


def _shard_task(args: tuple) -> shards.ShardInfo:
    return generate_shard(*args, on_samples=_report_to_parent)


def _generate_shards(out_uri: str, dataset: DatasetSpec, workers: int) -> list[shards.ShardInfo]:
    tasks = [(out_uri, dataset, i) for i in range(dataset.num_shards)]
    desc = f"generate {dataset.split}/{dataset.tier}"
    bar = tqdm(total=dataset.num_samples, desc=desc, unit="img", file=sys.stderr, leave=False)
    with bar:
        workers = max(1, min(workers, dataset.num_shards))
        if workers == 1:
            return [generate_shard(*task, on_samples=bar.update) for task in tasks]
        # "spawn": a forked child of a process that has started TensorFlow's threads can hang.
        context = multiprocessing.get_context("spawn")
        counter = context.Value("q", 0)
        with context.Pool(workers, initializer=_init_worker, initargs=(counter,)) as pool:
            result = pool.map_async(_shard_task, tasks, chunksize=1)
            while not result.ready():
                result.wait(0.25)
                bar.update(counter.value - bar.n)
            infos = result.get()
        bar.update(counter.value - bar.n)
        return infos


def _preview_samples(dataset: DatasetSpec) -> list[shards.Sample]:
    # Re-making the first few samples of each shard is cheaper than reading the shards back.
    per_shard = math.ceil(PREVIEW_SAMPLES / dataset.num_shards)
    samples: list[shards.Sample] = []
    for index in range(dataset.num_shards):
        samples.extend(islice(shard_samples(dataset, index), per_shard))
    return samples[:PREVIEW_SAMPLES]


def contact_sheet(samples: list[shards.Sample], columns: int = PREVIEW_COLUMNS, zoom: int = 2) -> bytes:
    """PNG: a grid of samples at ``zoom`` x, each with its label and font underneath."""
    if not samples:
        return shards.encode_png(np.full((1, 1), 255, np.uint8))
    height, width = samples[0].image.shape
    label_height = 16
    cell_w, cell_h = width * zoom + 8, height * zoom + label_height + 8
    rows = math.ceil(len(samples) / columns)
    sheet = Image.new("L", (columns * cell_w, rows * cell_h), 200)
    draw = ImageDraw.Draw(sheet)
    label_font = load_font(request_face(), 12)
    for i, sample in enumerate(samples):
        x, y = (i % columns) * cell_w + 4, (i // columns) * cell_h + 4
        tile = Image.fromarray(sample.image).resize((width * zoom, height * zoom), Image.Resampling.NEAREST)
        sheet.paste(tile, (x, y))
        font_name = sample.font.split("/")[-1].split(".")[0]
        draw.text((x, y + height * zoom + 1), f"{sample.text}   [{font_name}]", font=label_font, fill=0)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wordocr.generate",
        description="Render a labelled dataset of word images (TFRecord shards + manifest.json + "
        "preview.png) to a local folder or gs:// prefix. Re-running with the same arguments is a "
        "no-op; the manifest is written last, so an interrupted run leaves no dataset.",
    )
    parser.add_argument("--out", required=True, help="dataset folder or gs://bucket/prefix")
    parser.add_argument("--split", choices=SPLITS, default="train", help="word split to draw labels from")
    parser.add_argument("--samples", type=int, required=True, help="number of images in the dataset")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    parser.add_argument("--tier", choices=TIERS, default="train", help="degradation tier (default: train mixture)")
    parser.add_argument("--font-set", choices=FONT_SETS, default="train", help="font families to render with")
    parser.add_argument("--shards", type=int, default=4, help="number of TFRecord shards")
    parser.add_argument("--workers", type=int, default=2, help="processes (output does not depend on it)")
    parser.add_argument("--text", choices=TEXTS, default="lower",
                        help="lower: lower-case words; written: as people write them (Title case, capitals, "
                        "digits, apostrophes); title, upper: every word in that case")  # fmt: skip
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dataset = DatasetSpec(
        split=args.split,
        num_samples=args.samples,
        seed=args.seed,
        tier=args.tier,
        font_set=args.font_set,
        num_shards=args.shards,
        text=args.text,
    )
    manifest = generate_dataset(args.out, dataset, args.workers)
    log.info("dataset %s: %d samples, preview at %s", args.out, manifest.count, storage.join(args.out, PREVIEW_NAME))
    return 0


if __name__ == "__main__":
    sys.exit(main())
