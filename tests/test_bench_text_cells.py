"""The bench's case table and its written-text classes, from a report (no model, no Tesseract)."""

from bench.run import markdown
from bench.text_cells import text_lines


def _row(accuracy: float, tesseract: float | None = None, per_text: dict | None = None) -> dict:
    row = {"word_accuracy": accuracy, "cer": 0.01, "count": 100, "per_text": per_text or {}}
    if tesseract is not None:
        row["tesseract"] = {"word_accuracy": tesseract, "cer": 0.05, "count": 100,
                            "per_text": {"digits": {"count": 5, "word_accuracy": 0.2}}}  # fmt: skip
    return row


def _report() -> dict:
    return {
        "machine": "test",
        "font_sets": ["heldout"],
        "tiers": ["hard"],
        "tesseract": {"available": True, "note": "Tesseract"},
        "accuracy": {"heldout/hard": _row(0.91, 0.75)},
        "texts": {
            "title": {"heldout/hard": _row(0.88, 0.70)},
            "upper": {"heldout/hard": _row(0.80, 0.66)},
            "written": {"heldout/hard": _row(0.87, 0.69, {"digits": {"count": 5, "word_accuracy": 0.6},
                                                          "apostrophe": {"count": 4, "word_accuracy": 0.75}})},
        },
    }  # fmt: skip


def test_the_case_table_puts_lower_title_and_upper_side_by_side_with_tesseract():
    lines = text_lines(_report())
    head = "| cell | " + " | ".join(f"{case}: ours | {case}: Tesseract" for case in ("lower", "Title", "UPPER")) + " |"
    assert head in lines
    assert "| heldout/hard | 91.0% | 75.0% | 88.0% | 70.0% | 80.0% | 66.0% |" in lines


def test_written_cells_count_digits_and_apostrophes_apart():
    lines = text_lines(_report())
    assert "| heldout/hard | 87.0% (69.0%), 100 | 60.0% (20.0%), 5 | 75.0% (-), 4 |" in lines


def test_a_report_without_texts_has_no_case_table_and_markdown_shows_it_when_there():
    report = _report()
    assert "## Words as written" in markdown(report)
    del report["texts"]
    assert text_lines(report) == [] and "## Words as written" not in markdown(report)
