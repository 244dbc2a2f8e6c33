"""The gate's decisions: thresholds per cell, no regression against the served model's record, the
first model, a record from before per-cell readings, and records of other test sets."""

import json

import pytest

from wordocr.gate import LEGACY_CELL, Verdict, judge
from wordocr.recipes import GATE_CELLS

TEST_SET = {
    "split": "test", "seed": 11, "images_per_cell": 1000, "generator": "wordocr.generate/2", "words": 4263,
    "faces_sha256": {"train": "aaaa", "heldout": "bbbb"},
}  # fmt: skip


def _record(accuracy: float = 0.95, test_set: dict = TEST_SET, **cells: float) -> dict:
    """A grid record: every cell at ``accuracy``, except the cells named (train_noisy=0.9)."""
    readings = {cell: accuracy for cell in GATE_CELLS} | {k.replace("_", "/"): v for k, v in cells.items()}
    return {
        "test_set": test_set,
        "cells": {cell: {"word_accuracy": value, "cer": 0.01, "count": 1000} for cell, value in readings.items()},
    }


def _served(metrics: dict, version: str = "v20261204-000000-abcdef") -> dict:
    return {"model_name": "word-ocr", "version": version, "uri": f"/srv/word-ocr/{version}", "metrics": metrics}


THRESHOLDS = dict.fromkeys(GATE_CELLS, 0.9)


def test_a_model_at_or_above_every_threshold_with_nothing_served_passes():
    verdict = judge(_record(0.95, heldout_hard=0.9), THRESHOLDS, 0.02, served=None)
    assert verdict.passed
    assert verdict.champion_version == ""
    assert [cell.cell for cell in verdict.cells] == list(GATE_CELLS)
    assert all(cell.champion is None and cell.delta is None for cell in verdict.cells)
    assert verdict.summary().startswith("PASSED") and "no model served yet" in verdict.summary()
    assert any("first model" in note for note in verdict.notes)


def test_a_cell_below_its_threshold_is_refused_and_named():
    verdict = judge(_record(0.95, heldout_hard=0.87), THRESHOLDS, 0.02, served=None)
    assert not verdict.passed
    assert [cell.cell for cell in verdict.failed_cells] == ["heldout/hard"]
    assert verdict.summary() == "REFUSED: heldout/hard 0.870 is below its threshold 0.900 by 0.030"


def test_a_cell_worse_than_the_served_model_beyond_the_tolerance_is_refused_saying_by_how_much():
    served = _served(_record(0.97))
    verdict = judge(_record(0.97, train_noisy=0.94, heldout_clean=0.96), THRESHOLDS, 0.02, served)
    assert not verdict.passed
    [failed] = verdict.failed_cells
    assert failed.cell == "train/noisy"
    assert failed.delta == pytest.approx(-0.03)
    assert "0.030 below the served model's 0.970 (tolerance 0.020)" in verdict.summary()
    assert verdict.champion_version == served["version"]
    # heldout/clean fell by 0.01, within the tolerance: it passes.
    assert next(c for c in verdict.cells if c.cell == "heldout/clean").passed


def test_a_cell_worse_by_at_most_the_tolerance_passes():
    verdict = judge(_record(0.95, train_hard=0.93), THRESHOLDS, 0.02, _served(_record(0.95)))
    assert verdict.passed
    assert verdict.summary().startswith("PASSED") and "within 0.020 of the served model" in verdict.summary()


def test_a_cell_can_fail_both_ways_and_every_reason_is_given():
    verdict = judge(_record(0.97, heldout_hard=0.85), THRESHOLDS, 0.02, _served(_record(0.97)))
    [failed] = verdict.failed_cells
    assert len(failed.failures) == 2
    assert "below its threshold" in failed.failures[0] and "below the served model's" in failed.failures[1]


def test_a_record_from_before_per_cell_readings_is_compared_on_its_one_number_and_the_verdict_says_so():
    old = _served({"word_accuracy": 0.999})
    verdict = judge(_record(0.97), THRESHOLDS, 0.02, old)
    assert not verdict.passed
    assert [cell.cell for cell in verdict.failed_cells] == [LEGACY_CELL] == ["train/noisy"]
    assert [cell.cell for cell in verdict.cells if cell.champion is not None] == [LEGACY_CELL]
    assert any("predates per-cell readings" in note and LEGACY_CELL in note for note in verdict.notes)
    assert judge(_record(0.99), THRESHOLDS, 0.02, old).passed


def test_a_served_record_without_readings_leaves_nothing_to_compare():
    verdict = judge(_record(0.95), THRESHOLDS, 0.0, _served({}))
    assert verdict.passed
    assert any("holds no readings" in note for note in verdict.notes)


def test_cells_of_faces_the_served_model_was_not_measured_on_are_not_compared():
    other_faces = {**TEST_SET, "faces_sha256": {"train": "aaaa", "heldout": "cccc"}}
    served = _served(_record(0.99, test_set=other_faces))
    verdict = judge(_record(0.95), THRESHOLDS, 0.02, served)
    # The training faces' cells are compared (and fail); the held-out faces' are not.
    assert {cell.cell for cell in verdict.failed_cells} == {c for c in GATE_CELLS if c.startswith("train/")}
    assert all(cell.champion is None for cell in verdict.cells if cell.cell.startswith("heldout/"))
    assert any(note.startswith("heldout cells not compared") for note in verdict.notes)


def test_a_pass_says_how_many_cells_were_compared_with_the_served_model():
    other_heldout = {**TEST_SET, "faces_sha256": {"train": "aaaa", "heldout": "cccc"}}
    partly = judge(_record(0.95), THRESHOLDS, 0.02, _served(_record(0.95, test_set=other_heldout)))
    assert partly.passed and "4 of 8 cells compared, within 0.020 of the served model" in partly.summary()
    # Another generator: no cell is comparable, and the verdict does not claim it is within the tolerance.
    other_generator = {**TEST_SET, "generator": "wordocr.generate/1"}
    none = judge(_record(0.95), THRESHOLDS, 0.02, _served(_record(0.99, test_set=other_generator), "v1"))
    assert none.passed and all(cell.champion is None for cell in none.cells)
    assert none.summary() == (
        "PASSED: every cell at or above its threshold; no cell comparable with the served model v1 (see the notes)"
    )


def test_another_draw_of_the_same_faces_is_compared_and_noted():
    other_draw = {**TEST_SET, "seed": 3, "images_per_cell": 2000}
    verdict = judge(_record(0.95), THRESHOLDS, 0.02, _served(_record(0.95, test_set=other_draw)))
    assert verdict.passed and all(cell.champion == 0.95 for cell in verdict.cells)
    assert any("another draw" in note for note in verdict.notes)


def test_a_cell_the_challenger_was_not_measured_on_fails():
    record = _record(0.95)
    del record["cells"]["heldout/tight"]
    verdict = judge(record, THRESHOLDS, 0.02, None)
    assert [(c.cell, c.failures) for c in verdict.failed_cells] == [("heldout/tight", ("not measured",))]


def test_a_threshold_for_an_unknown_cell_is_refused():
    with pytest.raises(ValueError, match="unknown cells"):
        judge(_record(), {"heldout/blurry": 0.5}, 0.02, None)


def test_the_verdict_travels_as_json_and_shows_every_cell_in_its_tables():
    verdict = judge(_record(0.97, heldout_hard=0.85), THRESHOLDS, 0.02, _served(_record(0.96)))
    again = Verdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert again == verdict
    markdown = verdict.markdown()
    assert markdown.startswith("## Gate: REFUSED")
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "/" in line.split("|")[1]]
    assert len(rows) == len(GATE_CELLS)
    assert "| heldout/hard | 0.900 | 0.960 | 0.850 | -0.110 | FAIL: " in markdown
    assert "| train/clean | 0.900 | 0.960 | 0.970 | +0.010 | pass |" in markdown
    text = verdict.text()
    assert text.splitlines()[0] == verdict.summary()
    assert sum(1 for line in text.splitlines() if line.strip().startswith(GATE_CELLS)) == len(GATE_CELLS)
