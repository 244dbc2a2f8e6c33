"""bench/plot.py: the bench report drawn as accuracy bars beside Tesseract's and latency bars."""

import io
import json

from PIL import Image

from bench.plot import accuracy_bars, latency_bars, main, plot_report


def _timing(p50: float, p99: float) -> dict:
    return {"p50_ms": p50, "p99_ms": p99, "mean_ms": p50, "n": 10}


def _report(with_tesseract: bool = True) -> dict:
    peer = {"word_accuracy": 0.75, "cer": 0.09, "count": 10} if with_tesseract else None
    accuracy = {
        "train/clean": {"word_accuracy": 0.997, "cer": 0.001, "count": 10, "tesseract": peer},
        "heldout/hard": {"word_accuracy": 0.915, "cer": 0.02, "count": 10, "tesseract": peer},
    }
    if not with_tesseract:
        for cell in accuracy.values():
            del cell["tesseract"]
    return {
        "created": "2026-11-28T00:00:00Z",
        "machine": "x86_64, 2 cores",
        "accuracy": accuracy,
        "in_process": {"single_image": {"preprocess": _timing(0.7, 0.9), "recognize_top3": _timing(2.6, 3.1)},
                       "throughput": {"batch64_top3_images_per_s": 1100.0}},
        "http": {"v1_word": _timing(4.8, 6.0), "v1_batch32_words": _timing(62.0, 76.0),
                 "load": {"p50_ms": 39.0, "p99_ms": 50.0, "errors": 0}, "predictor_peak_rss_mib": 1000.0},
        "tesseract": {"available": with_tesseract, "in_process": {"single_image": {
            "upscale": _timing(0.3, 0.4), "read_one": _timing(4.4, 4.6)}}} if with_tesseract else {"available": False},
    }


def test_accuracy_bars_are_the_report_cells_in_percent_with_tesseract_beside_them():
    labels, ours, peer = accuracy_bars(_report())
    assert labels == ["train\nclean", "heldout\nhard"]
    assert [round(v, 6) for v in ours] == [99.7, 91.5]
    assert [round(v, 6) for v in peer] == [75.0, 75.0]


def test_cells_tesseract_did_not_read_have_no_bar():
    _, ours, peer = accuracy_bars(_report(with_tesseract=False))
    assert len(ours) == 2 and peer == [None, None]


def test_latency_bars_are_single_images_only():
    rows = latency_bars(_report())
    # The batch of 32 words and the load test are not one image's time.
    assert rows == [("in-process preprocess", 0.7, 0.9), ("in-process recognize_top3", 2.6, 3.1),
                    ("HTTP v1_word", 4.8, 6.0), ("Tesseract in-process read_one", 4.4, 4.6)]


def test_the_plot_is_a_png_with_or_without_tesseract():
    for report in (_report(), _report(with_tesseract=False)):
        image = Image.open(io.BytesIO(plot_report(report)))
        assert image.format == "PNG" and image.size == (1400, 500)


def test_the_command_redraws_a_saved_report_and_refuses_a_broken_one(tmp_path, capsys):
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(_report()))
    assert main([str(saved)]) == 0
    assert Image.open(tmp_path / "report.png").format == "PNG"

    broken = tmp_path / "broken.json"
    broken.write_text('{"accuracy": {}}')
    assert main([str(broken), str(tmp_path / "broken.png")]) == 2
    assert "cannot plot" in capsys.readouterr().err
    assert not (tmp_path / "broken.png").exists()
