"""The gate: whether a newly trained model (the challenger) is published in place of the one being
served (the champion), from their readings of the test grid (wordocr/test_grid.py).

A challenger passes when every cell reads at least its threshold, and no cell reads worse than the
champion's record by more than the tolerance. The first model (nothing served) is judged on the
thresholds alone. A record written before readings were kept per cell holds one number,
``word_accuracy``: the training faces' noisy tier, the one cell the single-number gate measured;
that cell alone is compared, and the verdict says so. Cells whose faces (or generator, or words)
differ between the two records are not compared, since their images are not drawn alike.

Plain values in and out (no kfp): the gate component and ``make run`` both call it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from wordocr.recipes import GATE_CELLS

# The cell the single-number gate measured (test tier "noisy", training faces).
LEGACY_CELL = "train/noisy"
# Readings are rounded to 4 decimals in reports; a difference this small is no difference.
_EPSILON = 1e-9


@dataclass(frozen=True)
class CellVerdict:
    """One cell: its threshold, the champion's and the challenger's word accuracy, and every reason
    it fails (none when it passes)."""

    cell: str
    threshold: float
    challenger: float | None  # None: the challenger was not measured on it
    champion: float | None  # None: nothing served, or nothing comparable recorded for this cell
    failures: tuple[str, ...] = ()

    @property
    def delta(self) -> float | None:
        """Challenger minus champion; None when there is nothing to compare."""
        if self.challenger is None or self.champion is None:
            return None
        return self.challenger - self.champion

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Verdict:
    """The gate's decision, cell by cell, with what it compared against."""

    cells: tuple[CellVerdict, ...]
    tolerance: float
    champion_version: str = ""  # the served version compared with; "" when nothing is served
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(cell.passed for cell in self.cells)

    @property
    def failed_cells(self) -> list[CellVerdict]:
        return [cell for cell in self.cells if not cell.passed]

    def summary(self) -> str:
        """One line: PASSED, or REFUSED naming every failing cell and by how much."""
        if self.passed:
            compared = [cell for cell in self.cells if cell.champion is not None]
            if not self.champion_version:
                against = "no model served yet"
            elif not compared:
                # Not "within the tolerance": nothing was compared (another generator, faces or words).
                against = f"no cell comparable with the served model {self.champion_version} (see the notes)"
            elif len(compared) < len(self.cells):
                against = (f"{len(compared)} of {len(self.cells)} cells compared, within {self.tolerance:.3f} "
                           f"of the served model {self.champion_version}")  # fmt: skip
            else:
                against = f"within {self.tolerance:.3f} of the served model {self.champion_version}"
            return f"PASSED: every cell at or above its threshold; {against}"
        reasons = "; ".join(f"{cell.cell} {'; '.join(cell.failures)}" for cell in self.failed_cells)
        return f"REFUSED: {reasons}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "tolerance": self.tolerance,
            "champion_version": self.champion_version,
            "notes": list(self.notes),
            "cells": [{**asdict(cell), "failures": list(cell.failures), "delta": cell.delta} for cell in self.cells],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        cells = tuple(
            CellVerdict(c["cell"], c["threshold"], c["challenger"], c["champion"], tuple(c["failures"]))
            for c in data["cells"]
        )
        return cls(cells, data["tolerance"], data["champion_version"], tuple(data["notes"]))

    def rows(self) -> list[list[str]]:
        """The table's rows: cell, threshold, champion, challenger, delta, verdict."""
        return [
            [
                cell.cell,
                f"{cell.threshold:.3f}",
                _number(cell.champion),
                _number(cell.challenger),
                "-" if cell.delta is None else f"{cell.delta:+.3f}",
                "pass" if cell.passed else "FAIL: " + "; ".join(cell.failures),
            ]
            for cell in self.cells
        ]

    def headers(self) -> list[str]:
        served = f"served {self.champion_version}" if self.champion_version else "served"
        return ["cell", "threshold", served, "challenger", "delta", "verdict"]

    def markdown(self) -> str:
        """The table for the KFP UI (a Markdown artifact)."""
        lines = [f"## Gate: {'PASSED' if self.passed else 'REFUSED'}", "", self.summary(), ""]
        lines.append("| " + " | ".join(self.headers()) + " |")
        lines.append("|---|---:|---:|---:|---:|---|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows()]
        lines += ["", f"Word accuracy per cell. Tolerance: {self.tolerance:.3f} below the served model."]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        """The same table for a terminal: aligned columns, the verdict's line first."""
        table = [self.headers(), *self.rows()]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        lines = [self.summary(), ""]
        for row in table:
            cells = [value.ljust(width) if i == 0 else value.rjust(width) for i, (value, width) in
                     enumerate(zip(row, widths, strict=False))]  # fmt: skip
            lines.append("  ".join([*cells, row[-1]]))
        lines.append(f"tolerance: {self.tolerance:.3f} below the served model")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _accuracy(metrics: dict[str, Any] | None) -> float | None:
    if not metrics or metrics.get("word_accuracy") is None:
        return None
    value = float(metrics["word_accuracy"])
    return None if math.isnan(value) else value


def _drawn_alike(champion_set: dict[str, Any], challenger_set: dict[str, Any], font_set: str) -> bool:
    """Whether a font set's cells of two records show the same kind of images: same generator,
    words and faces (the seed and the count may differ: that is sampling noise, within tolerance)."""
    return (
        champion_set.get("generator") == challenger_set.get("generator")
        and champion_set.get("words") == challenger_set.get("words")
        and champion_set.get("faces_sha256", {}).get(font_set) == challenger_set.get("faces_sha256", {}).get(font_set)
    )


def champion_readings(served: dict[str, Any] | None, challenger: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    """The served model's comparable reading per cell, and notes on what was left out and why.

    ``served`` is the served model's pointer (wordocr.publish.current_model), None if none;
    ``challenger`` the challenger's grid record (cells and test set)."""
    if served is None:
        return {}, ["no model is served yet: the first model is judged on the thresholds alone"]
    metrics = served.get("metrics") or {}
    version = served.get("version", "?")
    if "cells" not in metrics:
        legacy = _accuracy(metrics)
        if legacy is None:
            return {}, [f"the served model {version}'s record holds no readings: nothing to compare with"]
        return {LEGACY_CELL: legacy}, [
            f"the served model {version}'s record predates per-cell readings: it holds one word accuracy, "
            f"taken as {LEGACY_CELL} (the one cell the earlier gate measured), so only that cell was compared"
        ]
    notes = []
    readings = {}
    champion_set, challenger_set = metrics.get("test_set", {}), challenger.get("test_set", {})
    font_sets = {cell.split("/")[0] for cell in metrics["cells"]}
    skipped = sorted(f for f in font_sets if not _drawn_alike(champion_set, challenger_set, f))
    for font_set in skipped:
        notes.append(
            f"{font_set} cells not compared: the served model {version} was measured on other {font_set} faces "
            "(or another generator or word list)"
        )
    for cell, recorded in metrics["cells"].items():
        value = _accuracy(recorded)
        if value is not None and cell.split("/")[0] not in skipped:
            readings[cell] = value
    samples = ("seed", "images_per_cell")
    if any(champion_set.get(key) != challenger_set.get(key) for key in samples) and readings:
        notes.append(
            f"the served model {version} was measured on another draw ({', '.join(samples)}: "
            f"{[champion_set.get(k) for k in samples]}, now {[challenger_set.get(k) for k in samples]})"
        )
    return readings, notes


def judge(challenger: dict[str, Any], thresholds: dict[str, float], tolerance: float,
          served: dict[str, Any] | None) -> Verdict:  # fmt: skip
    """The verdict on ``challenger`` (a grid record: ``{"cells": {cell: {"word_accuracy": ...}},
    "test_set": ...}``) against ``thresholds`` (cell -> least word accuracy) and the served
    model's pointer ``served`` (None when nothing is served): a cell fails below its threshold, or
    more than ``tolerance`` below the served model's reading of it."""
    unknown = sorted(set(thresholds) - set(GATE_CELLS))
    if unknown:
        raise ValueError(f"thresholds for unknown cells {unknown}; the cells are {list(GATE_CELLS)}")
    champion, notes = champion_readings(served, challenger)
    cells = []
    for cell in GATE_CELLS:
        if cell not in thresholds:
            continue
        threshold = float(thresholds[cell])
        reading = _accuracy(challenger.get("cells", {}).get(cell))
        failures = []
        if reading is None:
            failures.append("not measured")
        elif reading < threshold - _EPSILON:
            failures.append(f"{reading:.3f} is below its threshold {threshold:.3f} by {threshold - reading:.3f}")
        previous = champion.get(cell)
        if reading is not None and previous is not None and reading - previous < -tolerance - _EPSILON:
            failures.append(
                f"{reading:.3f} is {previous - reading:.3f} below the served model's {previous:.3f} "
                f"(tolerance {tolerance:.3f})"
            )
        cells.append(CellVerdict(cell, threshold, reading, previous, tuple(failures)))
    version = served.get("version", "") if served else ""
    return Verdict(tuple(cells), float(tolerance), version, tuple(notes))
