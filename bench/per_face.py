"""The bench report's accuracy per font family, per style of face and per word class, as tables.

Each accuracy cell of a report (``font set/tier``) carries ``per_family``, ``per_style`` and
``per_word_class`` (``wordocr.evaluate.breakdowns``); these tables turn them around: a table per
font set with its families as rows and the tiers as columns, worst family first, and one table of
the word classes CTC finds hard beside all words.
"""

from __future__ import annotations

from typing import Any

from wordocr.fonts import family_style
from wordocr.recipes import BENCH_FONT_SETS, BENCH_TIERS

# Families are ranked by this tier, where faces differ most (clean text is read near 100 % in all).
RANK_TIER = "hard"
WORD_CLASS_NAMES = {
    "doubled_letter": "a doubled letter (ll, ss, pp, ...)",
    "thin_letter": "an i, l, t or j",
    "other": "neither",
}


def grid(report: dict) -> tuple[list[str], list[str]]:
    """(font sets, tiers) the report measured, in its order; the bench's defaults for a report
    that does not name them."""
    cells = [cell.split("/", 1) for cell in report.get("accuracy", {})]
    font_sets = report.get("font_sets") or list(dict.fromkeys(f for f, _ in cells)) or list(BENCH_FONT_SETS)
    tiers = report.get("tiers") or list(dict.fromkeys(t for _, t in cells)) or list(BENCH_TIERS)
    return list(font_sets), list(tiers)


def _cell(report: dict, font_set: str, tier: str) -> dict:
    return report.get("accuracy", {}).get(f"{font_set}/{tier}") or {}


def family_rows(report: dict, font_set: str, breakdown: str = "per_family") -> list[dict[str, Any]]:
    """One row per family (or style, with ``breakdown="per_style"``) of the font set: ``name``,
    ``style`` and ``tiers`` ({tier: {"word_accuracy", "count"}}, only the tiers that read it),
    worst first by ``RANK_TIER`` (by the mean over its tiers where that tier is missing), then by name."""
    _, tiers = grid(report)
    rows: dict[str, dict[str, Any]] = {}
    for tier in tiers:
        for name, result in (_cell(report, font_set, tier).get(breakdown) or {}).items():
            row = rows.setdefault(name, {"name": name, "tiers": {}})
            row["tiers"][tier] = {"word_accuracy": result["word_accuracy"], "count": result["count"]}
    for row in rows.values():
        row["style"] = family_style(row["name"]) if breakdown == "per_family" else row["name"]

    def rank(row: dict) -> tuple[float, str]:
        by_tier = row["tiers"]
        if RANK_TIER in by_tier:
            return by_tier[RANK_TIER]["word_accuracy"], row["name"]
        values = [r["word_accuracy"] for r in by_tier.values()]
        return sum(values) / len(values), row["name"]

    return sorted(rows.values(), key=rank)


def _percent(result: dict | None) -> str:
    if not result:
        return "-"
    return f"{result['word_accuracy']:.1%} ({result['count']})"


def family_lines(report: dict) -> list[str]:
    """A table per font set: families as rows (with their style), tiers as columns, each cell
    word accuracy and the images it counts; then the same per style. Empty for a report without
    per-family figures."""
    font_sets, tiers = grid(report)
    lines: list[str] = []
    for font_set in font_sets:
        families = family_rows(report, font_set)
        if not families:
            continue
        order = f"worst first by the {RANK_TIER} tier" if RANK_TIER in tiers else "worst first"
        lines += ["", f"### {font_set} fonts, per family: word accuracy (images), {order}", "",
                  "| family | style | " + " | ".join(tiers) + " |", "|---|---|" + "---|" * len(tiers)]  # fmt: skip
        for row in families:
            cells = [_percent(row["tiers"].get(tier)) for tier in tiers]
            lines.append(f"| {row['name']} | {row['style']} | " + " | ".join(cells) + " |")
        styles = family_rows(report, font_set, "per_style")
        lines += ["", f"{font_set} fonts, per style of face:", "", "| style | " + " | ".join(tiers) + " |",
                  "|---|" + "---|" * len(tiers)]  # fmt: skip
        for row in styles:
            lines.append(f"| {row['name']} | " + " | ".join(_percent(row["tiers"].get(t)) for t in tiers) + " |")
    if lines:
        lines = ["", "## Word accuracy per font family", *lines]
    return lines


def word_class_lines(report: dict) -> list[str]:
    """One table: per font set, all words, then each word class (``WORD_CLASS_NAMES``), tiers as
    columns. Empty for a report without word classes."""
    font_sets, tiers = grid(report)
    if not any(_cell(report, f, t).get("per_word_class") for f in font_sets for t in tiers):
        return []
    lines = ["", "## Words CTC finds hard: word accuracy (images)", "",
             "A word with both a doubled letter and an i, l, t or j counts in both rows; \"neither\" is "
             "every other word.", "",
             "| fonts | words with | " + " | ".join(tiers) + " |", "|---|---|" + "---|" * len(tiers)]  # fmt: skip
    for font_set in font_sets:
        overall = [_percent(_cell(report, font_set, tier) or None) for tier in tiers]
        lines.append(f"| {font_set} | all words | " + " | ".join(overall) + " |")
        for name, label in WORD_CLASS_NAMES.items():
            cells = [_percent((_cell(report, font_set, tier).get("per_word_class") or {}).get(name)) for tier in tiers]
            lines.append(f"| {font_set} | {label} | " + " | ".join(cells) + " |")
    return lines
