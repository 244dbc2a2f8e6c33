"""Train a recipe (the cluster's by default) on one GPU machine, without Kubeflow.

The pipeline's steps up to its gate, in one process: generate the recipe's training and
validation sets on every core, train with ``wordocr.train`` (the pipeline's own training, on the
GPU TensorFlow sees, in mixed precision), read the gate's test grid (every tier in the training
and the held-out faces, ``wordocr.test_grid``, as the pipeline's evaluate step does) and judge the
model by the recipe's gate (``wordocr.gate``; nothing is served here, so by the thresholds alone).
Every epoch is checkpointed and finished datasets and grid cells are kept, so the same command
started again resumes after the last finished epoch. In ``--workdir``:

- ``train/``, ``val/``: the datasets; ``test_grid/``: the gate's cells; ``checkpoints/``: every
  epoch's state;
- ``model/``: the model artifact, the one a pipeline run would publish;
- ``run.json``: the recipe's settings, the training result, the grid's readings, the gate's
  verdict per cell and the timings.

    python -m tools.device_train.train_recipe --workdir /data/cluster-run [--recipe cluster] [--epochs 8]

Exit code 0 when the model passes every cell of the recipe's gate, 2 when it does not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

from wordocr.recipes import RECIPES, Recipe, add_setting_flags, recipe_from_flags

log = logging.getLogger("word-ocr")


def dataset_specs(recipe: Recipe) -> dict:
    """The recipe's training and validation sets, as the pipeline makes them (validation in the
    training tier and fonts, one shard); the test images are the gate's grid (``train_recipe``)."""
    from wordocr.dataset_spec import DatasetSpec

    seed = recipe.training.seed
    return {
        "train": DatasetSpec("train", recipe.train_samples, seed, tier=recipe.train_tier, font_set="train",
                             num_shards=recipe.num_shards, text=recipe.train_text),
        "val": DatasetSpec("val", recipe.val_samples, seed, tier=recipe.train_tier, font_set="train", num_shards=1,
                           text=recipe.train_text),
    }  # fmt: skip


def _devices() -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return {"tensorflow": tf.__version__, "gpus": names, "cpus": os.cpu_count(), "host": platform.node()}


def train_recipe(recipe: Recipe, workdir: Path, workers: int) -> dict:
    """Generate, train and evaluate ``recipe`` under ``workdir``; returns what run.json holds."""
    from wordocr.gate import judge
    from wordocr.generate import generate_dataset
    from wordocr.test_grid import grid_record, measure_grid
    from wordocr.train import train

    workdir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    uris = {}
    for split, spec in dataset_specs(recipe).items():
        started = time.monotonic()
        uris[split] = str(workdir / split)
        generate_dataset(uris[split], spec, workers=workers)  # a finished dataset is kept, not remade
        seconds[f"generate_{split}"] = time.monotonic() - started
    log.info("training the %s recipe on %s", recipe.name, _devices())
    started = time.monotonic()
    result = train(uris["train"], uris["val"], str(workdir / "model"), recipe.training,
                   checkpoint_dir=str(workdir / "checkpoints"))  # fmt: skip
    seconds["train"] = time.monotonic() - started
    started = time.monotonic()
    # A finished cell is kept, like the datasets: a second start reads the grid without rendering it.
    readings = grid_record(measure_grid(result.artifact_uri, str(workdir / "test_grid"), recipe.test_samples, workers))
    seconds["evaluate"] = time.monotonic() - started
    verdict = judge(readings, recipe.gate, recipe.regression_tolerance, served=None)
    report = {
        "recipe": recipe.name,
        "settings": recipe.settings(),
        "devices": _devices(),
        "training": {k: v for k, v in result.to_dict().items() if k != "history"},
        "test_grid": readings,
        "gate": verdict.to_dict(),
        "passes_gate": verdict.passed,
        "seconds": seconds,
    }
    (workdir / "run.json").write_text(json.dumps(report, indent=2))
    log.info("the gate's test grid, %d images a cell:\n%s", recipe.test_samples, verdict.text())
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.device_train.train_recipe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="datasets, checkpoints, model and run.json")
    parser.add_argument("--recipe", choices=list(RECIPES), default="cluster", help="default: %(default)s")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="generation processes (default: every core, %(default)s)")
    add_setting_flags(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    report = train_recipe(recipe_from_flags(args.recipe, args), args.workdir.resolve(), args.workers)
    return 0 if report["passes_gate"] else 2


if __name__ == "__main__":
    raise SystemExit(main())
