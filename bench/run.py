"""Measure the deployed model and write ``bench/report.json``, ``report.md`` and ``report.png``.

    python -m bench.run --model out/serving/word-ocr [--samples 1000] [--requests 300]
    python -m bench.run --model out/gpu-model --accuracy-only --font-sets validation --out out/bench-validation

What it measures, each on this machine (2 shared CPU cores: numbers are noisy, compare runs
on the same machine only):
- accuracy and CER per degradation tier (clean, noisy, hard; and tight: clean text cropped flush
  with its ink) on words never trained on (letters alone excepted), in the
  training fonts and in the held-out fonts the model never saw (``--font-sets``: the validation
  fonts too, or instead); and in each cell per font family, per style of face (condensed,
  monospaced, regular) and per word class (words with a doubled letter, with an i, l, t or j);
- the same cells with the words in Title case, in capitals, and as people write them (digits and
  apostrophes among them), Tesseract beside, reading case (``--texts``, ``bench/text_cells.py``);
- in-process latency of one image (render, preprocess, model, decode) and batched throughput;
- latency of each HTTP endpoint over loopback against the real ModelServer, and its peak RSS;
- model size, training throughput (from the artifact), generation throughput on one core;
- Tesseract (``bench/tesseract.py``, when tesserocr is installed) on the very same test images:
  accuracy and CER per cell, in-process latency of one image and throughput;
- the served ONNX Runtime path beside the Keras/TensorFlow path (and an int8 quantised graph) in
  the same run: readings and accuracy per cell, a per-stage profile, throughput, and over HTTP
  start time, memory and requests/s at 1, 8 and 32 clients beside kserve's empty model
  (``bench/runtimes.py``, ``bench/serving_bench.py``, table in ``bench/comparison.py``);
- an overload run: the bounded queue's 503s and the pixel budget's 413s under hostile load,
  peak memory, and an answer afterwards.

``--accuracy-only`` measures the accuracy alone (Tesseract's too, where installed), in minutes:
for comparing training changes.

Tests never read what this writes: the committed reference they check the manifests against is
``bench/reference/report.json``, copied from a report deliberately.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import comparison, confidence, per_face, runtimes, serving_bench, text_cells
from bench.plot import plot_faces, plot_report
from wordocr.recipes import BENCH_FONT_SETS, BENCH_TIERS

log = logging.getLogger("bench")

REPORT_DIR = Path(__file__).parent
# The grid every model is measured on, named once with the recipes; validation fonts on request.
TIERS, FONT_SETS = BENCH_TIERS, BENCH_FONT_SETS
CHOOSABLE_FONT_SETS = ("train", "heldout", "validation")
# Each cell's breakdowns kept in the report (per face file and per length are left to evaluate's).
CELL_BREAKDOWNS = ("per_family", "per_style", "per_word_class", "per_text")
THROUGHPUT_TURNS = 3


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    values = np.asarray(samples_ms)
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "mean_ms": round(float(values.mean()), 3),
        "n": len(values),
    }


def bench_accuracy(artifact_uri: str, samples: int, seed: int, workdir: Path, tesseract=None,
                   readers: dict | None = None, font_sets: tuple[str, ...] = FONT_SETS) -> dict:  # fmt: skip
    """Our model per font set x tier, each cell also per family, style of face and word class;
    with a ``TesseractReader``, Tesseract on the same images too.

    ``readers`` (``bench.runtimes.load_readers``): the cell's metrics are the served runtime's, and
    each runtime's accuracy and readings beside them (``runtimes``); without them, the served
    runtime's reader alone."""
    from bench.runtimes import SERVED, compare_readings
    from wordocr.evaluate import evaluate
    from wordocr.generate import generate_dataset
    from wordocr.recognizer import load_reader
    from wordocr.test_grid import cell_spec

    recognizer = readers[SERVED] if readers else load_reader(artifact_uri)
    results = {}
    for font_set in font_sets:
        for tier in TIERS:
            data = workdir / f"test-{font_set}-{tier}"
            dataset = cell_spec(f"{font_set}/{tier}", samples, seed)
            generate_dataset(str(data), dataset, workers=os.cpu_count() or 1)
            metrics = evaluate(artifact_uri, str(data), recognizer=recognizer)
            results[f"{font_set}/{tier}"] = {
                "word_accuracy": round(metrics["word_accuracy"], 4),
                "cer": round(metrics["cer"], 4),
                "count": metrics["count"],
                "short_words_accuracy": _short_word_accuracy(metrics),
                "reliability": metrics["reliability"],
                **rounded_breakdowns(metrics),
            }
            if readers:
                results[f"{font_set}/{tier}"]["runtimes"] = compare_readings(readers, str(data))
            log.info("accuracy %s/%s: %.4f", font_set, tier, metrics["word_accuracy"])
            if tesseract is not None:
                peer = evaluate_tesseract(tesseract, str(data))
                if peer["count"] != metrics["count"]:
                    raise RuntimeError(f"{data}: Tesseract read {peer['count']} images, the model {metrics['count']}")
                results[f"{font_set}/{tier}"]["tesseract"] = peer
                log.info("tesseract %s/%s: %.4f", font_set, tier, peer["word_accuracy"])
    return results


def rounded_breakdowns(metrics: dict) -> dict:
    """``CELL_BREAKDOWNS`` of evaluate's metrics, accuracy and CER to 4 places."""
    return {
        name: {key: {"count": r["count"], "word_accuracy": round(r["word_accuracy"], 4), "cer": round(r["cer"], 4)}
               for key, r in metrics.get(name, {}).items()}
        for name in CELL_BREAKDOWNS
    }  # fmt: skip


def evaluate_tesseract(reader, dataset_uri: str) -> dict:
    """Tesseract's word accuracy and CER on every sample of a dataset (the ones ``evaluate`` reads),
    and the same ``CELL_BREAKDOWNS`` as ours."""
    from wordocr import shards
    from wordocr.evaluate import breakdowns
    from wordocr.metrics import character_error_rate, word_accuracy

    preds, truths, fonts = [], [], []
    for sample in shards.iter_samples(dataset_uri):
        preds.append(reader.read_one(sample.image))
        truths.append(sample.text)
        fonts.append(sample.font)
    return {
        "word_accuracy": round(word_accuracy(preds, truths), 4),
        "cer": round(character_error_rate(preds, truths), 4),
        "count": len(truths),
        **rounded_breakdowns(breakdowns(preds, truths, fonts)),
    }


def _short_word_lines(report: dict) -> list[str]:
    """The same cells for 1-3 letter words only (they count like the rest; this shows they do)."""
    font_sets, tiers = per_face.grid(report)
    lines = ["", "Short words (1-3 letters) only:", "", "| fonts | " + " | ".join(tiers) + " |",
             "|---|" + "---|" * len(tiers)]  # fmt: skip
    for font_set in font_sets:
        cells = []
        for tier in tiers:
            value = report["accuracy"].get(f"{font_set}/{tier}", {}).get("short_words_accuracy")
            cells.append("-" if value is None else f"{value:.1%}")
        lines.append(f"| {font_set} | " + " | ".join(cells) + " |")
    return lines


def _short_word_accuracy(metrics: dict) -> float | None:
    short = [v for k, v in metrics.get("per_length", {}).items() if int(k) <= 3]
    total = sum(v["count"] for v in short)
    if not total:
        return None
    return round(sum(v["word_accuracy"] * v["count"] for v in short) / total, 4)


def bench_runtimes(readers: dict, repeats: int, throughput_images: int = 1024) -> tuple[dict, dict]:
    """(the runtimes side by side, the served runtime's figures in the report's older ``in_process`` shape)."""
    from bench.runtimes import SERVED, ratios, stage_profile, throughput

    profile = stage_profile(readers, repeats)
    rates = throughput(readers, throughput_images)
    compared = {"stages": profile, "throughput": rates, "ratios_to_keras": ratios(profile, rates)}
    shared = ("render_word", "preprocess", "decode_png", "greedy_decode", "beam_top3_spelling")
    single = {name: profile[name] for name in shared}
    single.update({stage: profile[f"{SERVED}/{stage}"] for stage in ("model_logits", "recognize_top3", "end_to_end")})
    served = {name.split("/", 1)[1]: value for name, value in rates.items() if name.startswith(f"{SERVED}/")}
    return compared, {"runtime": SERVED, "single_image": single, "throughput": served}


def bench_tesseract_in_process(reader, spec, repeats: int) -> dict:
    """Tesseract's in-process latency (the same rendered, preprocessed words) and throughput."""
    from bench.tesseract import TesseractReader, read_parallel
    from wordocr.preprocess import preprocess
    from wordocr.render import render_request_word

    words = ["game", "word", "recognition", "ox", "kubeflow"]
    images = [preprocess(render_request_word(w), spec) for w in words]
    repeats = max(10, repeats // 3)  # about 10 ms an image: a third of our repeats is plenty
    times = runtimes.timed_interleaved(
        {"upscale": lambda: reader.prepare(images[0]), "read_one": lambda: reader.read_one(images[0])}, repeats
    )
    single = {name: percentiles(values) for name, values in times.items()}
    throughput = {}
    batch = [images[i % len(images)] for i in range(64)]
    for workers in sorted({1, os.cpu_count() or 1}):
        readers = [reader] + [TesseractReader(reader.settings) for _ in range(workers - 1)]
        try:
            read_parallel(readers, batch[:workers])
            start = time.perf_counter()
            read_parallel(readers, batch)
            rate = len(batch) / (time.perf_counter() - start)
        finally:
            for extra in readers[1:]:
                extra.close()
        throughput[f"batch{len(batch)}_{workers}_threads_images_per_s"] = round(rate, 1)
    return {"single_image": single, "throughput": throughput}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def endpoint_latency(requests_per_endpoint: int):
    """A function of a predictor's URL: p50/p99 of each endpoint, one client, requests in turn."""

    def measure(base: str) -> dict:
        import httpx

        from bench.serving_bench import png_b64
        from wordocr.render import render_request_word

        image_b64 = png_b64(render_request_word("game"))
        endpoints = {
            "v1_word": ("/v1/models/word-ocr:predict", {"json": {"instances": [{"word": "game"}]}}),
            "v1_image": ("/v1/models/word-ocr:predict", {"json": {"instances": [{"image_b64": image_b64}]}}),
            "v2_word": ("/v2/models/word-ocr/infer", {"json": {"inputs": [
                {"name": "word", "shape": [1], "datatype": "BYTES", "data": ["game"]}]}}),
            "v2_image": ("/v2/models/word-ocr/infer", {"json": {"inputs": [
                {"name": "image", "shape": [1], "datatype": "BYTES", "data": [image_b64]}]}}),
            "prototype_form": ("/predict", {"data": {"input_word": "game"}}),
            "v1_batch32_words": ("/v1/models/word-ocr:predict",
                                 {"json": {"instances": [{"word": "game"}] * 32}}),
        }  # fmt: skip
        results = {}
        with httpx.Client(base_url=base, timeout=30) as client:
            for name, (path, kwargs) in endpoints.items():
                for _ in range(10):
                    client.post(path, **kwargs).raise_for_status()
                times = []
                for _ in range(requests_per_endpoint):
                    start = time.perf_counter()
                    client.post(path, **kwargs).raise_for_status()
                    times.append((time.perf_counter() - start) * 1000)
                results[name] = percentiles(times)
                log.info("http %s: p50 %.2f ms", name, results[name]["p50_ms"])
        return results

    return measure


def bench_generation(samples: int, workdir: Path) -> dict:
    from wordocr.dataset_spec import DatasetSpec
    from wordocr.generate import generate_dataset

    start = time.perf_counter()
    generate_dataset(str(workdir / "gen"), DatasetSpec("train", samples, seed=7, num_shards=1), workers=1)
    seconds = time.perf_counter() - start
    return {"images_per_s_one_core": round(samples / seconds, 1), "samples": samples, "tier": "train"}


def model_facts(artifact_uri: str) -> dict:
    from wordocr import artifact, storage

    spec = artifact.read_spec(artifact_uri)
    training = spec.get("training", {})
    return {
        "artifact": artifact_uri,
        "model_keras_bytes": len(storage.read_bytes(storage.join(artifact_uri, "model.keras"))),
        "parameters": spec.get("params"),
        "input_spec": spec.get("input_spec"),
        "train_images_per_s": round(training.get("train_images_per_second", float("nan")), 1),
        "train_count": training.get("train_count"),
        "best_val_word_accuracy": training.get("best_val_word_accuracy"),
        "alphabet": spec.get("alphabet"),
        "calibration": spec.get("calibration"),
    }


def markdown(report: dict) -> str:
    """The report as markdown: accuracy, per family and word class, then (unless the run measured
    accuracy only) speed, memory and the runtimes side by side."""
    font_sets, tiers = per_face.grid(report)
    lines = ["# word-ocr bench", "", f"Machine: {report['machine']}", "", "## Word accuracy (CER)", "",
             "| fonts | " + " | ".join(tiers) + " |", "|---|" + "---|" * len(tiers)]  # fmt: skip
    for font_set in font_sets:
        cells = []
        for tier in tiers:
            r = report["accuracy"].get(f"{font_set}/{tier}")
            cells.append(f"{r['word_accuracy']:.1%} ({r['cer']:.3f})" if r else "-")
        lines.append(f"| {font_set} | " + " | ".join(cells) + " |")
    lines += _short_word_lines(report)
    lines += _tesseract_accuracy_lines(report)
    lines += text_cells.text_lines(report)
    lines += confidence.confidence_lines(report)
    lines += per_face.word_class_lines(report)
    lines += per_face.family_lines(report)
    if "in_process" not in report:
        lines += ["", "Accuracy only (`--accuracy-only`): no latency, throughput, HTTP or memory measured."]
        return "\n".join(lines) + "\n"
    lines += _performance_lines(report)
    return "\n".join(lines) + "\n"


def _performance_lines(report: dict) -> list[str]:
    lines = ["", "## Latency", "", "| what | p50 ms | p99 ms |", "|---|---|---|"]
    for name, r in report["in_process"]["single_image"].items():
        lines.append(f"| in-process {name} | {r['p50_ms']} | {r['p99_ms']} |")
    for name, r in report["http"].items():
        if isinstance(r, dict) and "p50_ms" in r and name != "load":
            lines.append(f"| HTTP {name} | {r['p50_ms']} | {r['p99_ms']} |")
    peer = report.get("tesseract", {})
    for name, r in peer.get("in_process", {}).get("single_image", {}).items():
        lines.append(f"| Tesseract in-process {name} | {r['p50_ms']} | {r['p99_ms']} |")
    lines += ["", "## Throughput and size", ""]
    for name, value in report["in_process"]["throughput"].items():
        lines.append(f"- {name}: {value}")
    for name, value in peer.get("in_process", {}).get("throughput", {}).items():
        lines.append(f"- Tesseract {name}: {value}")
    load = report["http"]["load"]
    lines.append(
        f"- load (8 clients, {load.get('duration_s')} s, {load.get('tool', 'Python clients, mixed endpoints')}): "
        f"{load['requests_per_s']} req/s, p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, {load['errors']} errors"
    )
    lines.append(f"- predictor peak RSS: {report['http'].get('predictor_peak_rss_mib')} MiB")
    lines.append(f"- model.keras: {report['model']['model_keras_bytes'] / 1e6:.2f} MB, "
                 f"{report['model']['parameters']} parameters")  # fmt: skip
    lines.append(f"- training: {report['model']['train_images_per_s']} images/s")
    lines.append(f"- generation: {report['generation']['images_per_s_one_core']} images/s on one core")
    lines += comparison.comparison_lines(report)
    lines += comparison.stage_lines(report)
    lines += comparison.runtime_accuracy_lines(report)
    lines += comparison.overload_lines(report)
    return lines


def _tesseract_accuracy_lines(report: dict) -> list[str]:
    peer = report.get("tesseract")
    if not peer:
        return []
    if not peer.get("available"):
        return ["", peer["note"]]
    font_sets, tiers = per_face.grid(report)
    lines = ["", "## Ours vs Tesseract on the same images: word accuracy (CER)", "", peer["note"], "",
             "| fonts | " + " | ".join(f"{t}: ours | {t}: Tesseract" for t in tiers) + " |",
             "|---|" + "---|" * 2 * len(tiers)]  # fmt: skip
    for font_set in font_sets:
        cells = []
        for tier in tiers:
            r = report["accuracy"].get(f"{font_set}/{tier}") or {}
            for side in (r, r.get("tesseract")):
                cells.append(f"{side['word_accuracy']:.1%} ({side['cer']:.3f})" if side else "-")
        lines.append(f"| {font_set} | " + " | ".join(cells) + " |")
    return lines


def _bench_texts(artifact_uri: str, readers: dict | None, texts: tuple[str, ...], args: argparse.Namespace,
                 font_sets: tuple[str, ...], workdir: Path, with_tesseract: bool) -> dict:  # fmt: skip
    """``text_cells.bench_texts`` with the served reader, and a Tesseract that keeps case."""
    from bench import tesseract
    from bench.runtimes import SERVED
    from wordocr.config import WRITTEN
    from wordocr.recognizer import load_reader

    recognizer = readers[SERVED] if readers else load_reader(artifact_uri)
    peer = tesseract.TesseractReader(tesseract.TesseractSettings(whitelist=WRITTEN, lower_case=False)) \
        if with_tesseract else None  # fmt: skip
    try:
        return text_cells.bench_texts(artifact_uri, recognizer, texts, args.samples, args.seed, workdir, font_sets,
                                      TIERS, tesseract=peer)  # fmt: skip
    finally:
        if peer is not None:
            peer.close()


def _tesseract_or_note(spec) -> tuple[object | None, dict]:
    """A ``TesseractReader`` and the report's tesseract section, or None and why it is missing."""
    from bench import tesseract

    reason = tesseract.unavailable_reason()
    if reason:
        log.warning("%s", reason)
        return None, {"available": False, "note": reason}
    reader = tesseract.TesseractReader()
    note = (f"Tesseract ({tesseract.version()}, --psm {reader.settings.psm}, a-z only) reads the same "
            f"preprocessed {spec.height}x{spec.width} images, upscaled {reader.settings.scale}x (LANCZOS) with a "
            f"{reader.settings.border} px white border; its output lower-cased, white space removed.")  # fmt: skip
    return reader, {"available": True, "version": tesseract.version(), "settings": reader.settings.to_dict(),
                    "note": note}  # fmt: skip


def write_report(report: dict, out: Path) -> None:
    """report.json, report.md, report.png and (with per-family figures) report-faces.png under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    (out / "report.png").write_bytes(plot_report(report))
    faces = plot_faces(report)
    if faces is not None:
        (out / "report-faces.png").write_bytes(faces)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument(
        "--model",
        default="out/serving/word-ocr",
        help="a model artifact or a published model folder (default: %(default)s, from `make run`)",
    )
    parser.add_argument(
        "--samples", type=int, default=1000, help="test images per tier and font set (default: %(default)s)"
    )
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests per endpoint (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=300, help="in-process repetitions (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the test images (default: %(default)s)")
    parser.add_argument("--throughput-images", type=int, default=1024,
                        help="images per batch size, runtime and turn of the throughput runs (default: %(default)s)")
    parser.add_argument("--load-seconds", type=float, default=serving_bench.LOAD_SECONDS,
                        help="seconds of each HTTP load run (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPORT_DIR,
                        help="where report.json, report.md, report.png and report-faces.png go")
    parser.add_argument("--font-sets", nargs="+", choices=CHOOSABLE_FONT_SETS, default=list(FONT_SETS),
                        metavar="SET", help="the font sets whose cells are measured, of "
                        f"{', '.join(CHOOSABLE_FONT_SETS)} (default: %(default)s); validation: faces never "
                        "trained on nor tested, for choosing between training changes")
    parser.add_argument("--texts", nargs="*", choices=text_cells.TEXTS, default=list(text_cells.TEXTS),
                        metavar="TEXT", help="besides lower-case words, the same cells in these texts, of "
                        f"{', '.join(text_cells.TEXTS)} (default: all; none: --texts with nothing after it). "
                        "A model of lower-case letters reads them too: what it cannot read shows")
    parser.add_argument("--accuracy-only", action="store_true",
                        help="measure accuracy alone (per cell, family, style and word class; Tesseract's too "
                        "where installed) and skip latency, throughput, the runtimes, HTTP and load: minutes, for "
                        "comparing training changes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from wordocr.config import InputSpec
    from wordocr.publish import resolve_artifact_uri

    try:
        artifact_uri = resolve_artifact_uri(args.model)
    except FileNotFoundError as exc:
        log.error("%s; run `make run` first or pass --model", exc)
        return 2
    font_sets = tuple(dict.fromkeys(args.font_sets))
    report: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model_facts(artifact_uri),
        "font_sets": list(font_sets),
        "tiers": list(TIERS),
        "accuracy_only": args.accuracy_only,
    }
    spec = InputSpec.from_dict(report["model"]["input_spec"])
    reader, report["tesseract"] = _tesseract_or_note(spec)
    readers = None if args.accuracy_only else runtimes.load_readers(artifact_uri)
    try:
        with tempfile.TemporaryDirectory(prefix="word-ocr-bench-") as tmp:
            report["accuracy"] = bench_accuracy(artifact_uri, args.samples, args.seed, Path(tmp), tesseract=reader,
                                                readers=readers, font_sets=font_sets)  # fmt: skip
            if args.texts:
                report["texts"] = _bench_texts(artifact_uri, readers, tuple(dict.fromkeys(args.texts)), args,
                                               font_sets, Path(tmp), with_tesseract=reader is not None)  # fmt: skip
            if not args.accuracy_only:
                report["generation"] = bench_generation(1000, Path(tmp))
        if not args.accuracy_only:
            report["runtimes"], report["in_process"] = bench_runtimes(readers, args.repeats, args.throughput_images)
            report["runtimes"]["int8"] = runtimes.int8_verdict(report["accuracy"], report["runtimes"]["stages"])
            if reader is not None:
                report["tesseract"]["in_process"] = bench_tesseract_in_process(reader, spec, args.repeats)
    finally:
        if reader is not None:
            reader.close()
    del readers  # the HTTP runs measure their servers' memory, not this process's
    if not args.accuracy_only:
        serving_bench.LOAD_SECONDS = args.load_seconds
        latency = endpoint_latency(args.requests)
        report["http"] = serving_bench.measure_predictor(args.model, runtimes.SERVED, latency)
        report["http_keras"] = serving_bench.measure_predictor(args.model, runtimes.BASELINE, latency)
        report["kserve_empty"] = serving_bench.measure_empty_kserve()
        report["overload"] = serving_bench.overload_run(args.model, args.load_seconds)
        report["comparison"] = comparison.comparison(report)
    write_report(report, args.out)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
