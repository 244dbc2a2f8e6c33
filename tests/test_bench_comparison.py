"""bench/comparison.py and the report's markdown: the served path beside today's, as ratios."""

from __future__ import annotations

from bench.comparison import comparison, comparison_lines, overload_lines, stage_lines
from bench.runtimes import int8_verdict


def _timing(p50: float, p99: float | None = None) -> dict:
    return {"p50_ms": p50, "p99_ms": p99 or p50 * 2, "mean_ms": p50, "n": 10}


def _http(rate8: float, rss: float, start: float, one: float) -> dict:
    clients = {str(c): {"requests_per_s": rate8 * c / 8, "p50_ms": 4.0, "p99_ms": 20.0, "errors": 0}
               for c in (1, 8, 32)}  # fmt: skip
    return {"v1_image": _timing(one), "clients": clients, "load": clients["8"], "rss_after_load_mib": rss,
            "predictor_peak_rss_mib": rss * 1.2, "start_to_ready_s": start}  # fmt: skip


def _report() -> dict:
    stages = {"keras/model_logits": _timing(4.0), "onnx/model_logits": _timing(1.0),
              "keras/end_to_end": _timing(5.0), "onnx/end_to_end": _timing(2.0), "preprocess": _timing(0.3)}
    rates = {"keras/batch64_top3_images_per_s": 1000.0, "onnx/batch64_top3_images_per_s": 1500.0}
    return {"runtimes": {"stages": stages, "throughput": rates},
            "http": _http(800.0, 300.0, 3.0, 2.5), "http_keras": _http(200.0, 1000.0, 20.0, 5.0),
            "kserve_empty": {"requests_per_s": 1600.0, "p50_ms": 1.0, "p99_ms": 2.0}}  # fmt: skip


def test_each_row_is_the_served_figure_over_todays():
    rows = {row["what"]: row for row in comparison(_report())}
    assert rows["model alone, one image, p50"]["ratio"] == 0.25
    assert rows["batched, 64 a call, top-3 and spelling"]["ratio"] == 1.5
    assert rows["HTTP 8 clients, one image each"]["ratio"] == 4.0
    assert rows["predictor RSS after load"]["ratio"] == 0.3
    assert rows["process start to ready"]["ratio"] == 0.15
    assert rows["batched, 256 a call, top-3 and spelling"]["ratio"] is None  # not measured: no ratio


def test_the_markdown_names_kserves_empty_model_beside_the_predictor():
    text = "\n".join(comparison_lines(_report()))
    assert "| model alone, one image, p50 | ms | 4.00 | 1.00 | 0.25 | <= 1.5 ms |" in text
    assert "kserve's own empty model, 8 clients" in text and "(the predictor: 50% of it)" in text


def test_int8_is_kept_only_if_no_cell_loses_more_than_a_tenth_of_a_point():
    def cell(onnx: float, int8: float) -> dict:
        return {"runtimes": {"onnx": {"word_accuracy": onnx}, "onnx_int8": {"word_accuracy": int8}}}

    assert int8_verdict({"a": cell(0.99, 0.99), "b": cell(0.95, 0.9495)})["kept"] is True
    lost = int8_verdict({"a": cell(0.99, 0.99), "b": cell(0.95, 0.948)})
    assert lost["kept"] is False and lost["max_cell_loss"] == 0.002
    assert "not kept" in "\n".join(stage_lines({"runtimes": {"stages": {"x": _timing(1.0)}, "int8": lost}}))


def test_the_overload_run_is_reported_with_statuses_and_the_answer_afterwards():
    run = {"queue": {"requests": 100, "duration_s": 10.0, "statuses": {"200": 40, "503": 60}, "p50_ms": 9.0,
                     "p99_ms": 30.0},
           "after": {"ready": True, "status": 200, "ms": 3.0}, "predictor_peak_rss_mib": 400.0,
           "page_png_bytes": 68000}  # fmt: skip
    text = "\n".join(overload_lines({"overload": run}))
    assert "{'200': 40, '503': 60}" in text and "answered 200 in 3.0 ms" in text and "400.0 MiB" in text


def test_int8_that_reads_slower_is_not_kept_even_when_it_loses_nothing():
    cells = {"a": {"runtimes": {"onnx": {"word_accuracy": 0.99}, "onnx_int8": {"word_accuracy": 0.99}}}}
    stages = {"onnx/end_to_end": _timing(2.0), "onnx_int8/end_to_end": _timing(5.0)}
    verdict = int8_verdict(cells, stages)
    assert verdict["kept"] is False and verdict["end_to_end_p50_ratio_to_float"] == 2.5
