"""The bench per face and per word class: which words CTC finds hard, accuracy per family and style
of face, the tables of report.md, the per-family plot and the options that choose what is measured."""

import io
import json

import pytest
from PIL import Image

from bench import per_face
from bench.plot import face_bars, plot_faces
from bench.plot import main as plot_main
from bench.run import main as bench_main
from bench.run import markdown, rounded_breakdowns
from wordocr.evaluate import breakdowns, face_family, word_classes

NARROW = "pt-sans-narrow/PTSansNarrow-Regular.ttf"
MONO = "dm-mono/DMMono-Regular.ttf"
ARIMO = "arimo/Arimo[wght].ttf@wght=400"
ARIMO_BOLD = "arimo/Arimo[wght].ttf@wght=800"


@pytest.mark.parametrize(
    ("word", "classes"),
    [
        ("forestalling", ("doubled_letter", "thin_letter")),
        ("nullify", ("doubled_letter", "thin_letter")),
        ("personifies", ("thin_letter",)),
        ("coffee", ("doubled_letter",)),
        ("jam", ("thin_letter",)),
        ("game", ("other",)),
        ("o", ("other",)),
        ("aba", ("other",)),  # the same letter twice, but not in a row
    ],
)
def test_words_are_classed_by_doubled_and_thin_letters(word, classes):
    assert word_classes(word) == classes


def test_a_face_name_gives_its_family_and_a_bare_name_is_a_family_itself():
    assert face_family(ARIMO) == "arimo"
    assert face_family(NARROW) == "pt-sans-narrow"
    assert face_family("roboto-italic") == "roboto-italic"
    assert face_family("") == "unknown"


def test_breakdowns_count_each_reading_under_its_family_style_and_word_classes():
    truths = ["nullify", "game", "tilt", "coffee", "nullify", "game"]
    preds = ["nulity", "game", "tilt", "cofee", "nullify", "gane"]
    fonts = [NARROW, NARROW, MONO, ARIMO, ARIMO_BOLD, ""]
    result = breakdowns(preds, truths, fonts)

    assert result["per_family"]["pt-sans-narrow"] == {"count": 2, "word_accuracy": 0.5, "cer": pytest.approx(2 / 11)}
    assert result["per_family"]["arimo"]["count"] == 2 and result["per_family"]["arimo"]["word_accuracy"] == 0.5
    assert result["per_family"]["unknown"]["count"] == 1
    assert {k: v["count"] for k, v in result["per_style"].items()} == {"condensed": 2, "monospaced": 1, "regular": 3}
    assert result["per_style"]["monospaced"]["word_accuracy"] == 1.0
    assert result["per_style"]["regular"]["word_accuracy"] == pytest.approx(1 / 3)
    # nullify twice, coffee: doubled; nullify twice, tilt: thin; game twice: neither.
    classes = result["per_word_class"]
    assert (classes["doubled_letter"]["count"], classes["doubled_letter"]["word_accuracy"]) == (3, pytest.approx(1 / 3))
    assert (classes["thin_letter"]["count"], classes["thin_letter"]["word_accuracy"]) == (3, pytest.approx(2 / 3))
    assert (classes["other"]["count"], classes["other"]["word_accuracy"]) == (2, 0.5)
    # Faces stay apart where families merge them; lengths as before.
    assert set(result["per_font"]) == {NARROW, MONO, ARIMO, ARIMO_BOLD, "unknown"}
    assert result["per_length"]["7"]["count"] == 2


def _cell(accuracy: float, count: int, families: dict, classes: dict | None = None) -> dict:
    """A report cell as bench.run writes it, from {family: (accuracy, count)}."""
    per_family = {name: {"count": n, "word_accuracy": acc, "cer": 0.0} for name, (acc, n) in families.items()}
    styles: dict = {}
    for name, (acc, n) in families.items():
        style = "condensed" if "narrow" in name else "monospaced" if "mono" in name else "regular"
        total = styles.setdefault(style, {"count": 0, "right": 0.0})
        total["count"] += n
        total["right"] += acc * n
    per_style = {s: {"count": t["count"], "word_accuracy": t["right"] / t["count"], "cer": 0.0}
                 for s, t in styles.items()}  # fmt: skip
    cell = {"word_accuracy": accuracy, "cer": 0.01, "count": count, "per_family": per_family, "per_style": per_style}
    if classes:
        cell["per_word_class"] = {name: {"count": n, "word_accuracy": acc, "cer": 0.0}
                                  for name, (acc, n) in classes.items()}  # fmt: skip
    return cell


def _report() -> dict:
    classes = {"doubled_letter": (0.8, 10), "thin_letter": (0.85, 60), "other": (0.95, 30)}
    return {
        "machine": "x86_64, 2 cores",
        "created": "2026-12-04T00:00:00Z",
        "font_sets": ["heldout"],
        "tiers": ["clean", "hard"],
        "accuracy_only": True,
        "tesseract": {"available": False, "note": "Tesseract: not installed"},
        "accuracy": {
            "heldout/clean": _cell(0.99, 100, {"arimo": (1.0, 40), "pt-sans-narrow": (0.98, 30),
                                               "dm-mono": (0.9667, 30)}, classes),
            "heldout/hard": _cell(0.88, 100, {"arimo": (0.95, 40), "pt-sans-narrow": (0.8, 30),
                                              "dm-mono": (0.9, 30)}, classes),
        },
    }


def test_families_are_ranked_worst_first_by_the_hard_tier_with_their_style():
    rows = per_face.family_rows(_report(), "heldout")
    assert [(r["name"], r["style"]) for r in rows] == [
        ("pt-sans-narrow", "condensed"), ("dm-mono", "monospaced"), ("arimo", "regular")]  # fmt: skip
    assert rows[0]["tiers"]["hard"] == {"word_accuracy": 0.8, "count": 30}
    # dm-mono is the worst on clean text, but faces are ranked by hard text.
    assert rows[1]["tiers"]["clean"]["word_accuracy"] == 0.9667


def test_without_a_hard_tier_families_are_ranked_by_their_mean():
    report = _report()
    del report["accuracy"]["heldout/hard"]
    report["tiers"] = ["clean"]
    assert [r["name"] for r in per_face.family_rows(report, "heldout")] == ["dm-mono", "pt-sans-narrow", "arimo"]


def test_the_family_table_has_families_as_rows_tiers_as_columns_and_the_images_counted():
    text = "\n".join(per_face.family_lines(_report()))
    assert "### heldout fonts, per family: word accuracy (images), worst first by the hard tier" in text
    table = text.split("| family | style | clean | hard |\n|---|---|---|---|\n", 1)[1].split("\n\n")[0]
    assert table.splitlines() == [
        "| pt-sans-narrow | condensed | 98.0% (30) | 80.0% (30) |",
        "| dm-mono | monospaced | 96.7% (30) | 90.0% (30) |",
        "| arimo | regular | 100.0% (40) | 95.0% (40) |",
    ]
    assert "| condensed | 98.0% (30) | 80.0% (30) |" in text


def test_the_word_class_table_puts_each_class_beside_all_words():
    lines = per_face.word_class_lines(_report())
    assert "| heldout | all words | 99.0% (100) | 88.0% (100) |" in lines
    assert "| heldout | a doubled letter (ll, ss, pp, ...) | 80.0% (10) | 80.0% (10) |" in lines
    assert "| heldout | an i, l, t or j | 85.0% (60) | 85.0% (60) |" in lines
    assert "| heldout | neither | 95.0% (30) | 95.0% (30) |" in lines


def test_a_report_without_breakdowns_has_no_family_or_word_class_tables():
    report = {"accuracy": {"train/clean": {"word_accuracy": 0.99, "cer": 0.0, "count": 10}}}
    assert per_face.family_lines(report) == [] and per_face.word_class_lines(report) == []
    assert face_bars(report) == {} and plot_faces(report) is None


def test_an_accuracy_only_report_reads_its_own_font_sets_and_says_what_it_left_out():
    text = markdown(_report())
    assert "| fonts | clean | hard |" in text and "| heldout | 99.0% (0.010) | 88.0% (0.010) |" in text
    assert "| train |" not in text
    assert "## Word accuracy per font family" in text and "## Words CTC finds hard" in text
    assert "Accuracy only" in text and "## Latency" not in text


def test_cells_keep_family_style_and_word_class_rounded_and_leave_faces_to_evaluate():
    metrics = {"per_font": {ARIMO: {}}, "per_family": {"arimo": {"count": 3, "word_accuracy": 2 / 3, "cer": 0.123456}},
               "per_style": {}, "per_word_class": {"other": {"count": 3, "word_accuracy": 1.0, "cer": 0.0}},
               "per_text": {"title": {"count": 3, "word_accuracy": 1 / 3, "cer": 0.5}}}
    kept = rounded_breakdowns(metrics)
    assert kept == {"per_family": {"arimo": {"count": 3, "word_accuracy": 0.6667, "cer": 0.1235}}, "per_style": {},
                    "per_word_class": {"other": {"count": 3, "word_accuracy": 1.0, "cer": 0.0}},
                    "per_text": {"title": {"count": 3, "word_accuracy": 0.3333, "cer": 0.5}}}  # fmt: skip


def test_the_faces_plot_has_a_bar_per_family_on_hard_text_worst_first():
    assert face_bars(_report()) == {"heldout": [("pt-sans-narrow", "condensed", 80.0, 30),
                                                ("dm-mono", "monospaced", 90.0, 30), ("arimo", "regular", 95.0, 40)]}
    image = Image.open(io.BytesIO(plot_faces(_report())))
    assert image.format == "PNG"


def test_the_plot_command_draws_an_accuracy_only_report_and_its_faces(tmp_path):
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(_report()))
    assert plot_main([str(saved)]) == 0
    assert Image.open(tmp_path / "report.png").size == (1400, 500)
    assert Image.open(tmp_path / "report-faces.png").format == "PNG"


def test_the_bench_help_names_the_font_sets_and_accuracy_only_and_refuses_an_unknown_set(capsys):
    with pytest.raises(SystemExit) as done:
        bench_main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--font-sets SET [SET ...]" in text and "validation" in text
    assert "--accuracy-only" in text and "skip latency" in text
    with pytest.raises(SystemExit) as refused:
        bench_main(["--font-sets", "cursive"])
    assert refused.value.code == 2
