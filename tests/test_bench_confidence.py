"""The bench's confidence tables, from a report (no model)."""

import pytest

from bench.confidence import confidence_lines, expected_error, pooled


def _bins(*rows):
    return [{"low": low, "high": round(low + 0.1, 1), "count": n, "mean_confidence": conf, "accuracy": acc}
            for low, n, conf, acc in rows]  # fmt: skip


def test_pooled_bins_add_counts_and_weigh_means():
    table = pooled(_bins((0.9, 100, 0.95, 0.9)) + _bins((0.9, 300, 0.99, 0.98), (0.5, 10, 0.55, 0.4)))
    assert [(b["low"], b["count"]) for b in table] == [(0.5, 10), (0.9, 400)]
    assert table[1]["mean_confidence"] == pytest.approx((95 + 297) / 400)
    assert table[1]["accuracy"] == pytest.approx((90 + 294) / 400)
    assert expected_error(table) == pytest.approx((10 * 0.15 + 400 * abs(384 / 400 - 392 / 400)) / 410)


def test_the_report_shows_ece_per_cell_and_a_table_per_tier():
    cell = {"reliability": {"ece": 0.031, "count": 110, "bins": _bins((0.5, 10, 0.55, 0.4), (0.9, 100, 0.95, 0.9))}}
    report = {"accuracy": {"train/hard": cell, "heldout/hard": cell},
              "texts": {"upper": {"heldout/hard": cell}}, "model": {"calibration": {"slope": 0.8}}}  # fmt: skip
    lines = confidence_lines(report)
    assert "| heldout/hard (upper) | 0.031 | 110 |" in lines
    assert any("The model's confidences are calibrated" in line for line in lines)
    assert sum(line.startswith("Reliability, hard text") for line in lines) == 1
    assert "| 0.9-1.0 | 300 | 0.950 | 0.900 |" in lines
    assert confidence_lines({"accuracy": {"train/hard": {"word_accuracy": 0.9}}}) == []
