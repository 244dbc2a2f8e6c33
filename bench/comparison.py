"""The before/after table of a bench report: the served ONNX path beside today's Keras path,
measured in the same run, with each figure's ratio and the target it is held to.

The same two cores run 2x apart from one machine (or one minute) to the next, so the ratios are
what carries from one run to another; the absolute numbers are this run's only.
"""

from __future__ import annotations

from typing import Any

# (name, where in the report, unit, better when, target for the served path or None)
Row = dict[str, Any]


def _get(report: dict, *path: str) -> Any:
    value: Any = report
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _row(name: str, unit: str, keras: float | None, onnx: float | None, target: str = "",
         lower_is_better: bool = True) -> Row:  # fmt: skip
    ratio = round(onnx / keras, 3) if keras and onnx is not None else None
    return {"what": name, "unit": unit, "keras": keras, "onnx": onnx, "ratio": ratio, "target": target,
            "lower_is_better": lower_is_better}  # fmt: skip


def comparison(report: dict) -> list[Row]:
    """The table's rows (ratio = ONNX / Keras; for rates, above 1 is better)."""
    stages = _get(report, "runtimes", "stages") or {}
    rates = _get(report, "runtimes", "throughput") or {}
    http, keras_http = report.get("http") or {}, report.get("http_keras") or {}

    def stage(runtime: str, name: str) -> float | None:
        return _get(stages, f"{runtime}/{name}", "p50_ms")

    rows = [
        _row("model alone, one image, p50", "ms", stage("keras", "model_logits"), stage("onnx", "model_logits"),
             "<= 1.5 ms"),
        _row("one image end to end in process (decode, preprocess, model, beam, spelling), p50", "ms",
             stage("keras", "end_to_end"), stage("onnx", "end_to_end"), "<= 2.0 ms and <= 0.6x"),
    ]  # fmt: skip
    for batch in (64, 256):
        key = f"batch{batch}_top3_images_per_s"
        rows.append(_row(f"batched, {batch} a call, top-3 and spelling", "images/s", rates.get(f"keras/{key}"),
                         rates.get(f"onnx/{key}"), ">= 1,500 images/s", lower_is_better=False))  # fmt: skip
    rows.append(_row("HTTP one client, v1 one image, p50", "ms", _get(keras_http, "v1_image", "p50_ms"),
                     _get(http, "v1_image", "p50_ms"), "<= 3 ms"))  # fmt: skip
    for clients in ("1", "8", "32"):
        target = ">= 800 requests/s and >= 4x" if clients == "8" else ""
        rows.append(_row(f"HTTP {clients} clients, one image each", "requests/s",
                         _get(keras_http, "clients", clients, "requests_per_s"),
                         _get(http, "clients", clients, "requests_per_s"), target, lower_is_better=False))
        rows.append(_row(f"HTTP {clients} clients, p99", "ms", _get(keras_http, "clients", clients, "p99_ms"),
                         _get(http, "clients", clients, "p99_ms"), "<= 25 ms" if clients == "8" else ""))
        rows.append(_row(f"HTTP {clients} clients, errors", "requests",
                         _get(keras_http, "clients", clients, "errors"), _get(http, "clients", clients, "errors"),
                         "0" if clients == "8" else ""))  # fmt: skip
    rows += [
        _row("predictor RSS after load", "MiB", keras_http.get("rss_after_load_mib"), http.get("rss_after_load_mib"),
             "<= 350 MiB"),
        _row("predictor peak RSS (load runs included)", "MiB", keras_http.get("predictor_peak_rss_mib"),
             http.get("predictor_peak_rss_mib")),
        _row("process start to ready", "s", keras_http.get("start_to_ready_s"), http.get("start_to_ready_s"), "<= 5 s"),
    ]  # fmt: skip
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def comparison_lines(report: dict) -> list[str]:
    lines = ["", "## ONNX Runtime (served) beside today's Keras/TensorFlow path, same run", "",
             "Ratios are ONNX / Keras (latency and memory: below 1 is better; rates: above 1). The cores are "
             "shared and noisy: compare ratios, not absolute numbers, across runs.", "",
             "| what | unit | Keras (today) | ONNX | ratio | target |", "|---|---|---|---|---|---|"]  # fmt: skip
    for row in report.get("comparison") or comparison(report):
        lines.append(f"| {row['what']} | {row['unit']} | {_cell(row['keras'])} | {_cell(row['onnx'])} | "
                     f"{_cell(row['ratio'])} | {row['target']} |")  # fmt: skip
    empty = report.get("kserve_empty")
    if empty:
        onnx8 = _get(report, "http", "clients", "8", "requests_per_s")
        share = f" (the predictor: {onnx8 / empty['requests_per_s']:.0%} of it)" if onnx8 and empty.get(
            "requests_per_s") else ""
        lines += ["", f"kserve's own empty model, 8 clients, same cores and tool: {empty['requests_per_s']} "
                      f"requests/s, p50 {empty['p50_ms']} ms, p99 {empty['p99_ms']} ms{share}."]  # fmt: skip
    return lines


def stage_lines(report: dict) -> list[str]:
    stages = _get(report, "runtimes", "stages") or {}
    if not stages:
        return []
    lines = ["", "## Where one image's time goes (in process, p50 / p99 ms)", "", "| stage | p50 ms | p99 ms |",
             "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {r['p50_ms']} | {r['p99_ms']} |" for name, r in stages.items()]
    int8 = _get(report, "runtimes", "int8")
    if int8:
        verdict = "kept" if int8["kept"] else "not kept"
        speed = int8.get("end_to_end_p50_ratio_to_float")
        speed_text = f", one image end to end {speed}x float's time" if speed is not None else ""
        lines += ["", f"int8 dynamic quantisation: {verdict} ({int8['rule']}; its worst cell lost "
                      f"{int8['max_cell_loss']:.2%}{speed_text})."]  # fmt: skip
    return lines


def runtime_accuracy_lines(report: dict) -> list[str]:
    cells = {cell: r["runtimes"] for cell, r in (report.get("accuracy") or {}).items() if "runtimes" in r}
    if not cells:
        return []
    names = list(next(iter(cells.values())))
    lines = ["", "## Word accuracy per runtime (top-3 beam and spelling; readings identical to Keras's)", "",
             "| cell | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]  # fmt: skip
    for cell, by_runtime in cells.items():
        values = [f"{r['word_accuracy']:.1%} ({r['same_reading_as_keras']}/{r['count']} same)"
                  for r in by_runtime.values()]  # fmt: skip
        lines.append(f"| {cell} | " + " | ".join(values) + " |")
    return lines


def overload_lines(report: dict) -> list[str]:
    run = report.get("overload")
    if not run:
        return []
    lines = ["", "## Overload and hostile load (served runtime, default limits)", ""]
    for name, load in run.items():
        if isinstance(load, dict) and "statuses" in load:
            lines.append(f"- {name}: {load['requests']} requests in {load['duration_s']} s, statuses "
                         f"{load['statuses']}, p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms (of those "
                         "answered 200)")
    after = run.get("after", {})
    lines.append(f"- afterwards: ready {after.get('ready')}, one image answered {after.get('status')} "
                 f"in {after.get('ms')} ms")  # fmt: skip
    lines.append(f"- predictor peak RSS over both runs: {run.get('predictor_peak_rss_mib')} MiB "
                 f"(a 20-megapixel page is {run.get('page_png_bytes')} bytes of PNG)")  # fmt: skip
    return lines
