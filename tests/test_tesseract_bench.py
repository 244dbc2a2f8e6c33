"""The bench's Tesseract side: the reader, its metrics on the very samples our model reads, the report."""

import re

import pytest

from bench import run, runtimes, tesseract
from tests.support.tiny_data import render_word, write_dataset
from wordocr.config import DEFAULT_INPUT_SPEC
from wordocr.metrics import character_error_rate, word_accuracy
from wordocr.shards import Sample

WORDS = ("cat", "river", "moon", "apple", "book", "garden")
needs_tesseract = pytest.mark.skipif(
    tesseract.unavailable_reason() is not None,
    reason=f"{tesseract.unavailable_reason()}: bash tools/install_system_packages.sh bench && "
    ".venv/bin/pip install --no-binary tesserocr -r requirements-bench.txt",
)


@pytest.fixture(scope="module")
def clean_samples():
    return [Sample(render_word(w, DEFAULT_INPUT_SPEC), w, "roboto") for w in WORDS]


@pytest.fixture(scope="module")
def reader():
    with tesseract.TesseractReader() as r:
        yield r


@needs_tesseract
def test_reader_returns_lower_case_words_and_reads_clean_text(reader, clean_samples):
    preds = reader.read([s.image for s in clean_samples])

    assert len(preds) == len(WORDS)
    assert all(re.fullmatch(r"[a-z]*", p) for p in preds)
    assert word_accuracy(preds, list(WORDS)) >= 4 / 6
    assert reader.prepare(clean_samples[0].image).size == (192 * 3 + 20, 32 * 3 + 20)


@needs_tesseract
def test_a_reader_for_written_words_keeps_their_case_and_digits():
    from wordocr.config import WRITTEN

    words = ("Garden", "RIVER", "model2")
    images = [render_word(w, DEFAULT_INPUT_SPEC) for w in words]
    with tesseract.TesseractReader(tesseract.TesseractSettings(whitelist=WRITTEN, lower_case=False)) as cased:
        preds = cased.read(images)
    assert any(p != p.lower() for p in preds)  # capitals come back as capitals
    assert word_accuracy(preds, list(words)) >= 2 / 3


@needs_tesseract
def test_parallel_reading_keeps_the_order(reader, clean_samples):
    images = [s.image for s in clean_samples]
    with tesseract.TesseractReader() as second:
        assert tesseract.read_parallel([reader, second], images) == reader.read(images)


@needs_tesseract
def test_tesseract_is_scored_on_the_dataset_samples(tmp_path, reader, clean_samples):
    # The bench's comparison reads the dataset the model is evaluated on; shards reorder the samples,
    # the metrics must not change.
    uri = write_dataset(clean_samples, str(tmp_path / "test"), split="test", spec=DEFAULT_INPUT_SPEC)
    direct = reader.read([s.image for s in clean_samples])

    scored = run.evaluate_tesseract(reader, uri)

    assert {key: scored[key] for key in ("word_accuracy", "cer", "count")} == {
        "word_accuracy": round(word_accuracy(direct, list(WORDS)), 4),
        "cer": round(character_error_rate(direct, list(WORDS)), 4),
        "count": len(WORDS),
    }
    # Beside the totals, the same breakdowns as the model's: per family, style of face, word class.
    assert sum(group["count"] for group in scored["per_family"].values()) == len(WORDS)
    assert {"per_style", "per_word_class"} <= set(scored)


def test_report_says_when_tesseract_is_missing(monkeypatch):
    monkeypatch.setattr(tesseract, "unavailable_reason", lambda: tesseract.NOT_INSTALLED)
    reader, section = run._tesseract_or_note(DEFAULT_INPUT_SPEC)

    assert reader is None
    assert run._tesseract_accuracy_lines({"tesseract": section}) == ["", tesseract.NOT_INSTALLED]
    assert "make bench installs it" in tesseract.NOT_INSTALLED


def test_report_puts_tesseract_beside_the_model_per_cell():
    cell = {"word_accuracy": 0.99, "cer": 0.001, "tesseract": {"word_accuracy": 0.9, "cer": 0.02}}
    report = {"tesseract": {"available": True, "note": "same images"},
              "accuracy": {f"{f}/{t}": cell for f in run.FONT_SETS for t in run.TIERS}}  # fmt: skip

    lines = run._tesseract_accuracy_lines(report)

    assert lines[-1] == "| heldout | " + " | ".join(["99.0% (0.001) | 90.0% (0.020)"] * 4) + " |"


def test_report_lists_short_word_accuracy_per_cell():
    cells = {f"{f}/{t}": {"word_accuracy": 0.9, "cer": 0.01, "short_words_accuracy": 0.875}
             for f in run.FONT_SETS for t in run.TIERS}  # fmt: skip
    cells["train/hard"]["short_words_accuracy"] = None  # no short word drawn

    lines = run._short_word_lines({"accuracy": cells})

    assert lines[-2] == "| train | 87.5% | 87.5% | - | 87.5% |"
    assert lines[-1] == "| heldout | 87.5% | 87.5% | 87.5% | 87.5% |"


def test_stages_are_timed_in_turns():
    calls = []
    times = runtimes.timed_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] * 3
    assert {name: len(samples) for name, samples in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for samples in times.values() for t in samples)


@needs_tesseract
def test_tesseract_speed_is_reported_per_stage_and_thread_count(reader):
    speed = run.bench_tesseract_in_process(reader, DEFAULT_INPUT_SPEC, repeats=30)
    assert set(speed["single_image"]) == {"upscale", "read_one"}
    assert all(stage["n"] == 10 and 0 < stage["p50_ms"] <= stage["p99_ms"] for stage in speed["single_image"].values())
    assert speed["throughput"] and all(rate > 0 for rate in speed["throughput"].values())
