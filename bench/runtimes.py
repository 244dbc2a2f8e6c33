"""The model's runtimes side by side, in one process and one run: today's Keras/TensorFlow path,
ONNX Runtime (what the predictor serves), and ONNX Runtime over an int8 dynamically quantised
copy of the graph (kept only if it loses no cell by more than ``INT8_MAX_LOSS``).

Each measurement takes turns between the runtimes, so a noisy spell on the shared cores slows
them alike; the report gives ratios to the Keras path beside the absolute numbers.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench.runtimes")

BASELINE = "keras"
SERVED = "onnx"
INT8 = "onnx_int8"
INT8_MAX_LOSS = 0.001  # word accuracy, per cell: 0.1 point
THROUGHPUT_TURNS = 3
WORDS = ("game", "word", "recognition", "ox", "kubeflow")


def quantized_graph(graph: bytes) -> bytes:
    """``graph`` with its weights quantised to int8 (dynamic quantisation: activations stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="word-ocr-int8-") as tmp:
        source, target = Path(tmp, "model.onnx"), Path(tmp, "model.int8.onnx")
        source.write_bytes(graph)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return target.read_bytes()


def load_readers(artifact_uri: str) -> dict:
    """``{"keras": ..., "onnx": ..., "onnx_int8": ...}``, each a loaded, warmed-up reader."""
    from wordocr.artifact import load_language_model, read_spec
    from wordocr.onnx_recognizer import OnnxRecognizer, onnx_graph_bytes
    from wordocr.recognizer import Recognizer

    doc = read_spec(artifact_uri)
    onnx = OnnxRecognizer.load(artifact_uri)
    int8 = OnnxRecognizer(quantized_graph(onnx_graph_bytes(artifact_uri, doc)), onnx.spec, onnx.alphabet, doc,
                          language_model=load_language_model(artifact_uri, doc))  # fmt: skip
    return {BASELINE: Recognizer.load(artifact_uri), SERVED: onnx, INT8: int8}


def compare_readings(readers: dict, dataset_uri: str, batch_size: int = 256) -> dict:
    """Per runtime: word accuracy and CER on a dataset (top-3 beam and spelling, as served), and
    how many of its readings are exactly the Keras path's."""
    from wordocr import shards
    from wordocr.metrics import character_error_rate, word_accuracy

    samples = list(shards.iter_samples(dataset_uri))
    truths = [s.text for s in samples]
    readings = {name: [] for name in readers}
    for start in range(0, len(samples), batch_size):
        images = np.stack([s.image for s in samples[start : start + batch_size]])
        for name, reader in readers.items():
            readings[name] += [r.text for r in reader.recognize(images, top_k=3)]
    base = readings[BASELINE]
    return {
        name: {
            "word_accuracy": round(word_accuracy(texts, truths), 4),
            "cer": round(character_error_rate(texts, truths), 4),
            "same_reading_as_keras": sum(a == b for a, b in zip(texts, base, strict=True)),
            "count": len(texts),
        }
        for name, texts in readings.items()
    }


def int8_verdict(accuracy: dict, stages: dict | None = None) -> dict:
    """Keep int8 only if no cell loses more than ``INT8_MAX_LOSS`` of word accuracy to ONNX float,
    and (with ``stages``, the stage profile) only if it reads one image faster at all."""
    losses = {cell: round(r["runtimes"][SERVED]["word_accuracy"] - r["runtimes"][INT8]["word_accuracy"], 4)
              for cell, r in accuracy.items() if "runtimes" in r}  # fmt: skip
    worst = max(losses.values(), default=0.0)
    speed = None
    if stages and f"{INT8}/end_to_end" in stages and f"{SERVED}/end_to_end" in stages:
        speed = round(stages[f"{INT8}/end_to_end"]["p50_ms"] / stages[f"{SERVED}/end_to_end"]["p50_ms"], 3)
    kept = bool(losses) and worst <= INT8_MAX_LOSS and (speed is None or speed < 1.0)
    return {"max_cell_loss": worst, "loss_per_cell": losses, "end_to_end_p50_ratio_to_float": speed, "kept": kept,
            "rule": f"kept only if no cell loses more than {INT8_MAX_LOSS:.1%} word accuracy and it is faster"}


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def timed_interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Each function's call times in ms, the functions taking turns: on a shared machine a noisy
    spell then slows every stage alike instead of whichever was being timed."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def stage_profile(readers: dict, repeats: int) -> dict:
    """One image, stage by stage, per runtime (p50/p99 ms): where the time of a request goes."""
    from bench.run import percentiles
    from wordocr.char_lm import CANDIDATES
    from wordocr.decode import beam_decode, greedy_decode_with_confidence
    from wordocr.preprocess import decode_image_bytes, preprocess
    from wordocr.recognizer import BEAM_WIDTH
    from wordocr.render import render_request_word

    any_reader = next(iter(readers.values()))
    spec, alphabet, spelling = any_reader.spec, any_reader.alphabet, any_reader.language_model
    rendered = render_request_word("game")
    png = _png(rendered)
    one = preprocess(rendered, spec)[None]
    logits = readers[SERVED].logits(one)

    def end_to_end(reader):
        return lambda: reader.recognize(preprocess(decode_image_bytes(png), spec)[None], top_k=3)

    fns = {
        "decode_png": lambda: decode_image_bytes(png),
        "preprocess": lambda: preprocess(rendered, spec),
        "render_word": lambda: render_request_word("game"),
        "greedy_decode": lambda: greedy_decode_with_confidence(logits, alphabet),
        "beam_top3_spelling": lambda: beam_decode(
            logits, alphabet, top_k=3, beam_width=BEAM_WIDTH, language_model=spelling, candidates=CANDIDATES
        ),
    }
    for name, reader in readers.items():
        fns[f"{name}/model_logits"] = lambda r=reader: r.logits(one)
        fns[f"{name}/recognize_top3"] = lambda r=reader: r.recognize(one, top_k=3)
        fns[f"{name}/end_to_end"] = end_to_end(reader)
    return {name: percentiles(values) for name, values in timed_interleaved(fns, repeats).items()}


def throughput(readers: dict, images_per_turn: int = 1024) -> dict:
    """Images/s per runtime at batch 64 and 256 (top-3 beam and spelling), the median of 3 turns
    of about ``images_per_turn`` images each."""
    from wordocr.preprocess import preprocess
    from wordocr.render import render_request_word

    spec = next(iter(readers.values())).spec
    images = np.stack([preprocess(render_request_word(w), spec) for w in WORDS])
    rates: dict[str, list[float]] = {}
    for _ in range(THROUGHPUT_TURNS):
        for batch in (64, 256):
            batch_images = np.resize(images, (batch, *images.shape[1:]))
            for name, reader in readers.items():
                reader.recognize(batch_images)
                rounds = max(2, images_per_turn // batch)
                start = time.perf_counter()
                for _ in range(rounds):
                    reader.recognize(batch_images, top_k=3)
                rates.setdefault(f"{name}/batch{batch}_top3_images_per_s", []).append(
                    rounds * batch / (time.perf_counter() - start))
    return {name: round(float(np.median(values)), 1) for name, values in rates.items()}


def ratios(profile: dict, rates: dict) -> dict:
    """Each runtime's figures as a ratio to the Keras path's (latency: < 1 is faster; rate: > 1)."""
    out = {}
    for name in (SERVED, INT8):
        for stage in ("model_logits", "recognize_top3", "end_to_end"):
            base, ours = profile.get(f"{BASELINE}/{stage}"), profile.get(f"{name}/{stage}")
            if base and ours:
                out[f"{name}/{stage}_p50"] = round(ours["p50_ms"] / base["p50_ms"], 3)
        for batch in (64, 256):
            base, ours = rates.get(f"{BASELINE}/batch{batch}_top3_images_per_s"), rates.get(
                f"{name}/batch{batch}_top3_images_per_s")
            if base and ours:
                out[f"{name}/batch{batch}_images_per_s"] = round(ours / base, 3)
    return out
