"""The bench's confidence tables: does a reading's confidence say how often such readings are right?

Each accuracy cell carries evaluate's ``reliability`` (``wordocr.calibration``): readings binned
by confidence, each bin's mean confidence and accuracy, and the expected calibration error (ECE).
These tables show the ECE per cell and, pooled over every cell of a tier, the reliability table:
a calibrated model's rows read the same number twice.
"""

from __future__ import annotations


def pooled(rows: list[dict]) -> list[dict]:
    """Reliability bins of several cells summed: counts added, means weighted by count."""
    bins: dict[float, dict] = {}
    for row in rows:
        slot = bins.setdefault(row["low"], {"low": row["low"], "high": row["high"], "count": 0,
                                            "confidence_sum": 0.0, "right": 0.0})  # fmt: skip
        slot["count"] += row["count"]
        slot["confidence_sum"] += row["mean_confidence"] * row["count"]
        slot["right"] += row["accuracy"] * row["count"]
    return [
        {"low": b["low"], "high": b["high"], "count": b["count"],
         "mean_confidence": b["confidence_sum"] / b["count"], "accuracy": b["right"] / b["count"]}
        for _, b in sorted(bins.items()) if b["count"]
    ]  # fmt: skip


def expected_error(rows: list[dict]) -> float:
    total = sum(r["count"] for r in rows)
    return sum(r["count"] * abs(r["accuracy"] - r["mean_confidence"]) for r in rows) / max(total, 1)


def confidence_lines(report: dict) -> list[str]:
    """Markdown: ECE per cell (lower-case cells, then the other texts'), and per tier the pooled
    reliability table."""
    cells = {cell: row for cell, row in report.get("accuracy", {}).items() if row.get("reliability")}
    for text, text_cells in report.get("texts", {}).items():
        cells.update({f"{cell} ({text})": row for cell, row in text_cells.items() if row.get("reliability")})
    if not cells:
        return []
    calibrated = report.get("model", {}).get("calibration")
    lines = ["", "## Confidence", "",
             "Expected calibration error (ECE): the gap between confidence and accuracy, bin by bin, weighted "
             "by the bin's readings; 0 is a confidence that means what it says. "
             + ("The model's confidences are calibrated (spec.json `calibration`)." if calibrated
                else "The model has no calibration: these are raw confidences."),
             "", "| cell | ECE | readings |", "|---|---|---|"]  # fmt: skip
    for cell, row in cells.items():
        lines.append(f"| {cell} | {row['reliability']['ece']:.3f} | {row['reliability']['count']} |")
    tiers = list(dict.fromkeys(cell.split("/")[1].split(" ")[0] for cell in cells))
    for tier in tiers:
        rows = [b for cell, row in cells.items() if cell.split("/")[1].split(" ")[0] == tier
                for b in row["reliability"]["bins"]]  # fmt: skip
        table = pooled(rows)
        lines += ["", f"Reliability, {tier} text, every cell pooled (ECE {expected_error(table):.3f}):", "",
                  "| confidence | readings | mean confidence | right |", "|---|---|---|---|"]  # fmt: skip
        for b in table:
            lines.append(f"| {b['low']:.1f}-{b['high']:.1f} | {b['count']} | {b['mean_confidence']:.3f} | "
                         f"{b['accuracy']:.3f} |")  # fmt: skip
    return lines
