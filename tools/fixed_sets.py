"""Fixed test images, stored before preprocessing, to compare models and preprocessing changes.

The bench draws its test images anew with the generator, so a change to the generator, the fonts
or the word split moves every cell, and 1,000 images a cell still move by half a point with the
draw. Changes to preprocessing or to how the recognizer reads need the same images read again:

    .venv/bin/python tools/fixed_sets.py build /tmp/fixed            # about 30 s on 2 cores
    .venv/bin/python tools/fixed_sets.py eval out/serving/word-ocr /tmp/fixed [--second-look-below 0]

Each set is ``<font set>-<tier>.npz`` in the folder: the degraded images exactly as the generator
made them before preprocessing (``generate.shard_draws``; test split, seed 31), with their words
and faces. ``eval`` preprocesses them with the working tree's code and reads them as the
predictor does (beam search, spelling, the second look; ``wordocr.evaluate.score_samples``, the
rule the pipeline's gate reads by), and prints word accuracy per set; ``--failures FILE`` writes
every misread image's word, reading, face and confidence, in the set's order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from wordocr.dataset_spec import DatasetSpec
from wordocr.generate import shard_draws

# Images per set: held-out fonts are what the numbers are about; the training fonts are a check.
SETS = {
    ("heldout", "clean"): 2000,
    ("heldout", "noisy"): 1000,
    ("heldout", "hard"): 2000,
    ("heldout", "tight"): 1500,
    ("train", "clean"): 500,
    ("train", "noisy"): 500,
    ("train", "hard"): 1000,
    ("train", "tight"): 500,
}
SEED = 31


def set_path(folder: Path, font_set: str, tier: str) -> Path:
    return folder / f"{font_set}-{tier}.npz"


def build(folder: Path, sets: dict[tuple[str, str], int] = SETS, seed: int = SEED) -> list[Path]:
    """Draw every set and write it to ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (font_set, tier), count in sets.items():
        draws = list(shard_draws(DatasetSpec("test", count, seed, tier=tier, font_set=font_set, num_shards=1), 0))
        path = set_path(folder, font_set, tier)
        save_set(path, [raw for raw, _ in draws], [s.text for _, s in draws], [s.font for _, s in draws])
        print(f"{path}: {count} images", flush=True)
        written.append(path)
    return written


def save_set(path: Path, images: list[np.ndarray], words: list[str], fonts: list[str]) -> None:
    """Images of any size, flattened into one array with their shapes (no pickling to load)."""
    shapes = np.array([image.shape for image in images], dtype=np.int32)
    pixels = np.concatenate([image.ravel() for image in images]) if images else np.zeros(0, np.uint8)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(partial, pixels=pixels, shapes=shapes, words=np.array(words), fonts=np.array(fonts))
    partial.replace(path)  # a set file is whole or absent


def load_set(path: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    with np.load(path) as data:
        pixels, shapes = data["pixels"], data["shapes"]
        words, fonts = [str(w) for w in data["words"]], [str(f) for f in data["fonts"]]
    ends = np.cumsum([int(np.prod(shape)) for shape in shapes])
    images = [pixels[end - int(np.prod(shape)) : end].reshape(shape) for end, shape in zip(ends, shapes, strict=True)]
    return images, words, fonts


def evaluate(model: str, folder: Path, second_look_below: float | None = None) -> dict[str, dict]:
    """Per set: ``wordocr.evaluate``'s metrics, with every misread image in ``example_errors``."""
    from wordocr.evaluate import score_samples
    from wordocr.preprocess import preprocess
    from wordocr.publish import resolve_artifact_uri
    from wordocr.recognizer import Recognizer
    from wordocr.shards import Sample

    recognizer = Recognizer.load(resolve_artifact_uri(model))
    if second_look_below is not None:
        recognizer.second_look_below = second_look_below
    results = {}
    for path in sorted(folder.glob("*.npz")):
        images, words, fonts = load_set(path)
        samples = (Sample(preprocess(image, recognizer.spec), word, font)
                   for image, word, font in zip(images, words, fonts, strict=True))  # fmt: skip
        results[path.stem] = score_samples(recognizer, samples, max_example_errors=None)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="draw the fixed sets into FOLDER")
    build_cmd.add_argument("folder", type=Path)
    eval_cmd = commands.add_parser("eval", help="read the fixed sets in FOLDER with a model")
    eval_cmd.add_argument("model", help="a model artifact or a published model folder")
    eval_cmd.add_argument("folder", type=Path)
    eval_cmd.add_argument("--second-look-below", type=float, default=None,
                          help="the recognizer's threshold (default: its own; 0 turns the second look off)")
    eval_cmd.add_argument("--failures", type=Path, help="write the misread images here (JSON)")
    args = parser.parse_args(argv)

    if args.command == "build":
        build(args.folder)
        return 0
    if not any(args.folder.glob("*.npz")):
        print(f"no fixed sets in {args.folder}: run `build {args.folder}` first", file=sys.stderr)
        return 2
    results = evaluate(args.model, args.folder, args.second_look_below)
    for name, result in results.items():
        print(f"{name:16s} {100 * result['word_accuracy']:6.2f} %  of {result['count']}")
    if args.failures:
        args.failures.write_text(json.dumps({n: r["example_errors"] for n, r in results.items()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
