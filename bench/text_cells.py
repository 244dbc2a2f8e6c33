"""The bench's words as people write them: Title case, capitals, and words with digits or apostrophes.

The bench's main cells are lower-case words (every report before capitals is comparable with
them). These cells draw the very same test words and faces, with the same seed, in each of the
other texts of ``wordocr.dataset_spec.TEXTS``: ``title`` and ``upper`` (every word in that case),
and ``written`` (words as the generator writes them, whose digits and apostrophes are counted
apart). Tesseract reads them too, allowed the same characters as our model, with its case kept.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

TEXTS = ("title", "upper", "written")
TEXT_NAMES = {"lower": "lower", "title": "Title", "upper": "UPPER"}
# The per_text classes of written cells shown on their own: what lower-case cells never hold.
WRITTEN_CLASSES = {"digits": "with digits", "apostrophe": "with an apostrophe"}


def bench_texts(artifact_uri: str, recognizer, texts: tuple[str, ...], samples: int, seed: int, workdir: Path,
                font_sets: tuple[str, ...], tiers: tuple[str, ...], tesseract=None) -> dict:  # fmt: skip
    """``{text: {"font_set/tier": metrics}}``: our model (and Tesseract, reading case) per cell."""
    from bench.run import evaluate_tesseract, rounded_breakdowns
    from wordocr.evaluate import evaluate
    from wordocr.generate import generate_dataset
    from wordocr.test_grid import cell_spec

    results: dict = {}
    for text in texts:
        results[text] = {}
        for font_set in font_sets:
            for tier in tiers:
                cell = f"{font_set}/{tier}"
                data = workdir / f"test-{font_set}-{tier}-{text}"
                generate_dataset(str(data), dataclasses.replace(cell_spec(cell, samples, seed), text=text),
                                 workers=os.cpu_count() or 1)  # fmt: skip
                metrics = evaluate(artifact_uri, str(data), recognizer=recognizer)
                row = {
                    "word_accuracy": round(metrics["word_accuracy"], 4),
                    "word_accuracy_ignoring_case": round(metrics["word_accuracy_ignoring_case"], 4),
                    "cer": round(metrics["cer"], 4),
                    "count": metrics["count"],
                    "reliability": metrics["reliability"],
                    **rounded_breakdowns(metrics),
                }
                if tesseract is not None:
                    row["tesseract"] = evaluate_tesseract(tesseract, str(data))
                results[text][cell] = row
                log.info("accuracy %s/%s, %s: %.4f", font_set, tier, text, metrics["word_accuracy"])
    return results


def text_lines(report: dict) -> list[str]:
    """The case table (lower / Title / UPPER per cell, Tesseract beside) and the digits and
    apostrophes of the written cells, as markdown."""
    texts = report.get("texts")
    if not texts:
        return []
    cases = ["lower", *(t for t in ("title", "upper") if t in texts)]
    with_tesseract = bool(report.get("tesseract", {}).get("available"))
    heads = [f"{TEXT_NAMES[c]}: ours" + (f" | {TEXT_NAMES[c]}: Tesseract" if with_tesseract else "") for c in cases]
    lines = ["", "## Words as written: case, digits, apostrophes", "",
             "The same test words and faces in lower case, Title case and capitals. Word accuracy; a "
             "reading right but for its case counts as wrong.", "",
             "| cell | " + " | ".join(heads) + " |", "|---|" + "---|" * len(cases) * (1 + with_tesseract)]  # fmt: skip
    for cell in report.get("accuracy", {}):
        values = []
        for case in cases:
            row = report["accuracy"][cell] if case == "lower" else texts[case].get(cell, {})
            values.append(_percent(row.get("word_accuracy")))
            if with_tesseract:
                values.append(_percent(row.get("tesseract", {}).get("word_accuracy")))
        lines.append(f"| {cell} | " + " | ".join(values) + " |")
    if "written" in texts:
        lines += ["", "Words as the generator writes them (60 % lower case, 25 % Title, 15 % capitals, 5 % with "
                  "digits, 4 % with an apostrophe), by class: ours (Tesseract), images.", "",
                  "| cell | all | " + " | ".join(WRITTEN_CLASSES.values()) + " |",
                  "|---|---|" + "---|" * len(WRITTEN_CLASSES)]  # fmt: skip
        for cell, row in texts["written"].items():
            values = [_with_peer(row, None)]
            values += [_with_peer(row, name) for name in WRITTEN_CLASSES]
            lines.append(f"| {cell} | " + " | ".join(values) + " |")
    return lines


def _with_peer(row: dict, text_class: str | None) -> str:
    def pick(side: dict) -> dict:
        return side if text_class is None else side.get("per_text", {}).get(text_class, {})

    ours = pick(row)
    shown = _percent(ours.get("word_accuracy"))
    if "tesseract" in row:
        shown += f" ({_percent(pick(row['tesseract']).get('word_accuracy'))})"
    return f"{shown}, {ours.get('count', 0)}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
