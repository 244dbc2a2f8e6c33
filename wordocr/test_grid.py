"""The test grid the gate reads: one dataset per cell of ``GATE_CELLS`` (every degradation tier, in
the training faces and in the held-out faces), of the test split's words, never trained on.

Every cell is drawn from ``GRID_SEED`` whatever the run's seed, so every model is read on the very
same images: a challenger and the model being served differ by what they read, not by the draw.
The grid is a pure function of its size (images per cell) and the generator, and a cell already
made with the same params is kept (a retried task does not render it again).

    <grid_uri>/train-clean/{manifest.json, shard, preview.png}, <grid_uri>/heldout-hard/...
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
from typing import Any

from wordocr import storage
from wordocr.dataset_spec import DatasetSpec
from wordocr.evaluate import evaluate
from wordocr.fonts import font_faces
from wordocr.generate import dataset_params, generate_dataset
from wordocr.recipes import BENCH_FONT_SETS, GATE_CELLS
from wordocr.recognizer import Recognizer

log = logging.getLogger(__name__)

GRID_SEED = 11
# What a cell's record keeps; the full report of each cell (per face, family, length, errors) stays
# in the evaluation report.
CELL_METRICS = ("word_accuracy", "cer", "count")


def cell_spec(cell: str, images_per_cell: int, seed: int = GRID_SEED) -> DatasetSpec:
    """The dataset of one cell ("heldout/hard"): one shard, so its images do not depend on how many
    processes make it. The bench draws its cells the same way, from a seed of its choosing."""
    font_set, tier = cell.split("/")
    return DatasetSpec("test", images_per_cell, seed, tier=tier, font_set=font_set, num_shards=1)


def cell_uri(grid_uri: str, cell: str) -> str:
    return storage.join(grid_uri, cell.replace("/", "-"))


def describe_test_set(images_per_cell: int) -> dict[str, Any]:
    """What the grid's readings were measured on, kept with them in the served model's record: two
    records compare cell by cell where the generator, the words and the cell's faces are the same."""
    params = dataset_params(cell_spec(GATE_CELLS[0], images_per_cell))
    faces = {font_set: [face.name for face in font_faces(font_set)] for font_set in BENCH_FONT_SETS}
    return {
        "split": "test",
        "seed": GRID_SEED,
        "images_per_cell": images_per_cell,
        "generator": params["generator"],
        "words": params["words"],
        "input_spec": params["input_spec"],
        "families": {font_set: sorted({name.partition("/")[0] for name in names}) for font_set, names in faces.items()},
        "faces_sha256": {
            font_set: hashlib.sha256("\n".join(names).encode()).hexdigest()[:16] for font_set, names in faces.items()
        },
    }


def _generate_cell(args: tuple[str, DatasetSpec]) -> None:
    uri, spec = args
    generate_dataset(uri, spec, workers=1)


def generate_grid(grid_uri: str, images_per_cell: int, workers: int = 2) -> dict[str, str]:
    """Render every cell under ``grid_uri`` (a cell per process, ``workers`` at a time); returns
    each cell's dataset URI."""
    uris = {cell: cell_uri(grid_uri, cell) for cell in GATE_CELLS}
    jobs = [(uris[cell], cell_spec(cell, images_per_cell)) for cell in GATE_CELLS]
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        for job in jobs:
            _generate_cell(job)
    else:
        # "spawn": a forked child of a process that has started TensorFlow's threads can hang.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pool.map(_generate_cell, jobs, chunksize=1)
    return uris


def measure_grid(artifact_uri: str, grid_uri: str, images_per_cell: int, workers: int = 2,
                 recognizer: Recognizer | None = None) -> dict[str, Any]:  # fmt: skip
    """Render the grid (``generate_grid``) and read every cell with the model at ``artifact_uri``.

    Returns ``{"test_set": describe_test_set(...), "cells": {cell: {word_accuracy, cer, count}},
    "reports": {cell: evaluate's whole report}}``; ``grid_record`` of it is what the gate and the
    served model's record keep."""
    uris = generate_grid(grid_uri, images_per_cell, workers)
    recognizer = recognizer or Recognizer.load(artifact_uri)
    reports = {cell: evaluate(artifact_uri, uris[cell], recognizer=recognizer) for cell in GATE_CELLS}
    for cell, report in reports.items():
        log.info("%-14s word accuracy %.4f, CER %.4f on %d images", cell, report["word_accuracy"], report["cer"],
                 report["count"])  # fmt: skip
    return {
        "test_set": describe_test_set(images_per_cell),
        "cells": {cell: {name: reports[cell][name] for name in CELL_METRICS} for cell in GATE_CELLS},
        "reports": reports,
    }


def grid_record(measured: dict[str, Any]) -> dict[str, Any]:
    """The readings a model is judged on and published with: the cells and their test set, without
    the per-cell reports."""
    return {"test_set": measured["test_set"], "cells": measured["cells"]}
