"""Measure the deployed model and write ``bench/report.json``, ``report.md`` and ``report.png``.

    python -m bench.run --model out/serving/word-ocr [--samples 1000] [--requests 300]

What it measures, each on this machine (2 shared CPU cores: numbers are noisy, compare runs
on the same machine only):
- accuracy and CER per degradation tier (clean, noisy, hard; and tight: clean text cropped flush
  with its ink) on words never trained on (letters alone excepted), in the
  training fonts and in the held-out fonts the model never saw;
- in-process latency of one image (render, preprocess, model, decode) and batched throughput;
- latency of each HTTP endpoint over loopback against the real ModelServer, and its peak RSS;
- model size, training throughput (from the artifact), generation throughput on one core;
- Tesseract (``bench/tesseract.py``, when tesserocr is installed) on the very same test images:
  accuracy and CER per cell, in-process latency of one image and throughput.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.plot import plot_report
from tools.processes import http_ok, start_process, stop_process, wait_until_ready

log = logging.getLogger("bench")

REPORT_DIR = Path(__file__).parent
TIERS = ("clean", "noisy", "hard", "tight")
FONT_SETS = ("train", "heldout")
THROUGHPUT_TURNS = 3


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    values = np.asarray(samples_ms)
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "mean_ms": round(float(values.mean()), 3),
        "n": len(values),
    }


def _timed_interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Each function's call times in ms, the functions taking turns: on a shared machine a noisy
    spell then slows every stage alike instead of whichever was being timed."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def bench_accuracy(artifact_uri: str, samples: int, seed: int, workdir: Path, tesseract=None) -> dict:
    """Our model per font set x tier; with a ``TesseractReader``, Tesseract on the same images too."""
    from wordocr.evaluate import evaluate
    from wordocr.generate import generate_dataset
    from wordocr.recognizer import Recognizer

    recognizer = Recognizer.load(artifact_uri)
    results = {}
    for font_set in FONT_SETS:
        for tier in TIERS:
            data = workdir / f"test-{font_set}-{tier}"
            generate_dataset(str(data), split="test", num_samples=samples, seed=seed, font_set=font_set,
                             tier=tier, num_shards=1, workers=os.cpu_count() or 1)  # fmt: skip
            metrics = evaluate(artifact_uri, str(data), recognizer=recognizer)
            results[f"{font_set}/{tier}"] = {
                "word_accuracy": round(metrics["word_accuracy"], 4),
                "cer": round(metrics["cer"], 4),
                "count": metrics["count"],
                "short_words_accuracy": _short_word_accuracy(metrics),
            }
            log.info("accuracy %s/%s: %.4f", font_set, tier, metrics["word_accuracy"])
            if tesseract is not None:
                peer = evaluate_tesseract(tesseract, str(data))
                if peer["count"] != metrics["count"]:
                    raise RuntimeError(f"{data}: Tesseract read {peer['count']} images, the model {metrics['count']}")
                results[f"{font_set}/{tier}"]["tesseract"] = peer
                log.info("tesseract %s/%s: %.4f", font_set, tier, peer["word_accuracy"])
    return results


def evaluate_tesseract(reader, dataset_uri: str) -> dict:
    """Tesseract's word accuracy and CER on every sample of a dataset (the ones ``evaluate`` reads)."""
    from wordocr import shards
    from wordocr.metrics import character_error_rate, word_accuracy

    preds, truths = [], []
    for sample in shards.iter_samples(dataset_uri):
        preds.append(reader.read_one(sample.image))
        truths.append(sample.text)
    return {
        "word_accuracy": round(word_accuracy(preds, truths), 4),
        "cer": round(character_error_rate(preds, truths), 4),
        "count": len(truths),
    }


def _short_word_lines(report: dict) -> list[str]:
    """The same cells for 1-3 letter words only (they count like the rest; this shows they do)."""
    lines = ["", "Short words (1-3 letters) only:", "", "| fonts | " + " | ".join(TIERS) + " |",
             "|---|" + "---|" * len(TIERS)]  # fmt: skip
    for font_set in FONT_SETS:
        cells = []
        for tier in TIERS:
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


def bench_in_process(artifact_uri: str, repeats: int) -> dict:
    from wordocr.preprocess import preprocess
    from wordocr.recognizer import Recognizer
    from wordocr.render import render_request_word

    recognizer = Recognizer.load(artifact_uri)
    words = ["game", "word", "recognition", "ox", "kubeflow"]
    rendered = [render_request_word(w) for w in words]
    images = np.stack([preprocess(r, recognizer.spec) for r in rendered])
    one = images[:1]
    times = _timed_interleaved({
        "render_word": lambda: render_request_word("game"),
        "preprocess": lambda: preprocess(rendered[0], recognizer.spec),
        "model_logits": lambda: recognizer.logits(one),
        "recognize_greedy": lambda: recognizer.recognize(one, top_k=0),
        "recognize_top3": lambda: recognizer.recognize(one, top_k=3),
    }, repeats)  # fmt: skip
    stages = {name: percentiles(samples) for name, samples in times.items()}
    rates: dict[str, list[float]] = {}
    for _ in range(THROUGHPUT_TURNS):  # configurations take turns, as above; the median turn counts
        for batch in (64, 256):
            batch_images = np.resize(images, (batch, *images.shape[1:]))
            for top_k in (0, 3):
                recognizer.recognize(batch_images, top_k=top_k)
                rounds = max(2, 1024 // batch)
                start = time.perf_counter()
                for _ in range(rounds):
                    recognizer.recognize(batch_images, top_k=top_k)
                name = f"batch{batch}_{'top3' if top_k else 'greedy'}_images_per_s"
                rates.setdefault(name, []).append(rounds * batch / (time.perf_counter() - start))
    throughput = {name: round(float(np.median(values)), 1) for name, values in rates.items()}
    return {"single_image": stages, "throughput": throughput}


def bench_tesseract_in_process(reader, spec, repeats: int) -> dict:
    """Tesseract's in-process latency (the same rendered, preprocessed words) and throughput."""
    from bench.tesseract import TesseractReader, read_parallel
    from wordocr.preprocess import preprocess
    from wordocr.render import render_request_word

    words = ["game", "word", "recognition", "ox", "kubeflow"]
    images = [preprocess(render_request_word(w), spec) for w in words]
    repeats = max(10, repeats // 3)  # about 10 ms an image: a third of our repeats is plenty
    times = _timed_interleaved(
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


def bench_http(model_dir: str, requests_per_endpoint: int) -> dict:
    import httpx

    from wordocr.render import render_request_word

    port = _free_port()
    server = start_process(
        [sys.executable, "-m", "serving", "--model_dir", model_dir, "--http_port", str(port), "--enable_grpc", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            wait_until_ready(lambda: http_ok(f"{base}/v2/health/ready"), "the predictor", 120, server)
            png = io.BytesIO()
            from PIL import Image

            Image.fromarray(render_request_word("game")).save(png, format="PNG")
            image_b64 = base64.b64encode(png.getvalue()).decode()
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
            from bench.load import run_load

            results["load"] = run_load(base, clients=8, duration_s=20)
        results["predictor_peak_rss_mib"] = _peak_rss_mib(server.pid)
        return results
    finally:
        stop_process(server, 15)


def bench_generation(samples: int, workdir: Path) -> dict:
    from wordocr.generate import generate_dataset

    start = time.perf_counter()
    generate_dataset(str(workdir / "gen"), split="train", num_samples=samples, seed=7, num_shards=1, workers=1)
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
    }


def markdown(report: dict) -> str:
    lines = ["# word-ocr bench", "", f"Machine: {report['machine']}", "", "## Word accuracy (CER)", "",
             "| fonts | " + " | ".join(TIERS) + " |", "|---|" + "---|" * len(TIERS)]  # fmt: skip
    for font_set in FONT_SETS:
        cells = []
        for tier in TIERS:
            r = report["accuracy"].get(f"{font_set}/{tier}")
            cells.append(f"{r['word_accuracy']:.1%} ({r['cer']:.3f})" if r else "-")
        lines.append(f"| {font_set} | " + " | ".join(cells) + " |")
    lines += _short_word_lines(report)
    lines += _tesseract_accuracy_lines(report)
    lines += ["", "## Latency", "", "| what | p50 ms | p99 ms |", "|---|---|---|"]
    for name, r in report["in_process"]["single_image"].items():
        lines.append(f"| in-process {name} | {r['p50_ms']} | {r['p99_ms']} |")
    for name, r in report["http"].items():
        if isinstance(r, dict) and name != "load":
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
        f"- load (8 clients, 20 s, mixed endpoints): {load['requests_per_s']} req/s, "
        f"p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, {load['errors']} errors"
    )
    lines.append(f"- predictor peak RSS: {report['http'].get('predictor_peak_rss_mib')} MiB")
    lines.append(f"- model.keras: {report['model']['model_keras_bytes'] / 1e6:.2f} MB, "
                 f"{report['model']['parameters']} parameters")  # fmt: skip
    lines.append(f"- training: {report['model']['train_images_per_s']} images/s")
    lines.append(f"- generation: {report['generation']['images_per_s_one_core']} images/s on one core")
    return "\n".join(lines) + "\n"


def _tesseract_accuracy_lines(report: dict) -> list[str]:
    peer = report.get("tesseract")
    if not peer:
        return []
    if not peer.get("available"):
        return ["", peer["note"]]
    lines = ["", "## Ours vs Tesseract on the same images: word accuracy (CER)", "", peer["note"], "",
             "| fonts | " + " | ".join(f"{t}: ours | {t}: Tesseract" for t in TIERS) + " |",
             "|---|" + "---|" * 2 * len(TIERS)]  # fmt: skip
    for font_set in FONT_SETS:
        cells = []
        for tier in TIERS:
            r = report["accuracy"].get(f"{font_set}/{tier}") or {}
            for side in (r, r.get("tesseract")):
                cells.append(f"{side['word_accuracy']:.1%} ({side['cer']:.3f})" if side else "-")
        lines.append(f"| {font_set} | " + " | ".join(cells) + " |")
    return lines


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
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help="where report.json/.md/.png go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from serving.predictor import resolve_artifact_uri
    from wordocr.config import InputSpec

    try:
        artifact_uri = resolve_artifact_uri(args.model)
    except FileNotFoundError as exc:
        log.error("%s; run `make run` first or pass --model", exc)
        return 2
    report: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model_facts(artifact_uri),
    }
    spec = InputSpec.from_dict(report["model"]["input_spec"])
    reader, report["tesseract"] = _tesseract_or_note(spec)
    try:
        with tempfile.TemporaryDirectory(prefix="word-ocr-bench-") as tmp:
            report["accuracy"] = bench_accuracy(artifact_uri, args.samples, args.seed, Path(tmp), tesseract=reader)
            report["generation"] = bench_generation(1000, Path(tmp))
        report["in_process"] = bench_in_process(artifact_uri, args.repeats)
        if reader is not None:
            report["tesseract"]["in_process"] = bench_tesseract_in_process(reader, spec, args.repeats)
    finally:
        if reader is not None:
            reader.close()
    report["http"] = bench_http(args.model, args.requests)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "report.md").write_text(markdown(report))
    (args.out / "report.png").write_bytes(plot_report(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
