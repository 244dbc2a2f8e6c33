"""Evaluate a model artifact on the test grid: every tier, in the training and the held-out faces."""

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def evaluate_model(
    model: dsl.Input[dsl.Model],
    test_samples: int,
    workers: int,
    data_root: str,
    run_id: str,
    test_grid: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.Artifact],
) -> dict:
    """Render the test grid (``test_samples`` images per cell, words never trained on; at
    {data_root}/{run id}/test with a ``data_root``, else in ``test_grid``) and read every cell.

    Returns the readings the gate judges and the served model's record keeps (per cell: word
    accuracy, CER, count; and the test set); ``metrics`` has each cell's word accuracy, ``report``
    every cell's whole evaluation (per face, family, style, length, example errors)."""
    import json
    import logging

    from wordocr.runs import run_folder
    from wordocr.test_grid import grid_record, measure_grid

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    grid_uri = run_folder(data_root, run_id, "test") if data_root else test_grid.path
    measured = measure_grid(model.metadata.get("uri") or model.path, grid_uri, test_samples, workers)
    readings = grid_record(measured)
    for cell, cell_metrics in readings["cells"].items():
        metrics.log_metric(cell, cell_metrics["word_accuracy"])
    metrics.log_metric("images per cell", test_samples)
    test_grid.metadata.update({"split": "test", "images_per_cell": test_samples, "cells": list(readings["cells"])})
    if data_root:
        test_grid.metadata["uri"] = grid_uri
        with open(test_grid.path, "w") as f:
            json.dump({"uri": grid_uri}, f)
    with open(report.path, "w") as f:
        json.dump(measured, f, indent=2, sort_keys=True)
    return readings
