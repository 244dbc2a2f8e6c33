"""Measure a model artifact on a shard dataset: word accuracy, CER, and where the errors are.

    python -m wordocr.evaluate --model models/run1 --data data/test --out metrics.json
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import islice, pairwise
from typing import Any

import numpy as np

from wordocr import shards, storage
from wordocr.calibration import reliability
from wordocr.fonts import family_style
from wordocr.metrics import character_error_rate, word_accuracy
from wordocr.recognizer import Recognizer
from wordocr.written import case_of

log = logging.getLogger(__name__)

MAX_EXAMPLE_ERRORS = 20
# Letters a CTC reader loses most: a thin letter (i, l, t, j) is a column or two of ink at 32 px,
# easily merged into its neighbour, and a doubled letter needs a blank between its two halves or
# CTC collapses them into one ("nullify" read as "nulity", "forestalling" as "forestaling").
THIN_LETTERS = frozenset("iltj")
WORD_CLASSES = ("doubled_letter", "thin_letter", "other")
# How a word is written (wordocr.written): its case, and whether it has digits or an apostrophe.
TEXT_CLASSES = ("lower", "title", "upper", "digits", "apostrophe")


def _batches(samples: Iterator[shards.Sample], size: int) -> Iterator[list[shards.Sample]]:
    while batch := list(islice(samples, size)):
        yield batch


def _breakdown(groups: dict[Any, tuple[list[str], list[str]]]) -> dict[str, dict[str, float]]:
    return {
        str(key): {
            "count": len(truths),
            "word_accuracy": word_accuracy(preds, truths),
            "cer": character_error_rate(preds, truths),
        }
        for key, (preds, truths) in sorted(groups.items())
    }


def word_classes(word: str) -> tuple[str, ...]:
    """The ``WORD_CLASSES`` a word belongs to: "doubled_letter" (the same letter twice in a row),
    "thin_letter" (an i, l, t or j), both, or else "other"."""
    classes = []
    if any(a == b for a, b in pairwise(word)):
        classes.append("doubled_letter")
    if THIN_LETTERS.intersection(word):
        classes.append("thin_letter")
    return tuple(classes) or ("other",)


def text_classes(word: str) -> tuple[str, ...]:
    """The ``TEXT_CLASSES`` a word belongs to: its case (``wordocr.written.case_of``), and "digits"
    and "apostrophe" where it has them."""
    classes = [case_of(word)]
    if any(c.isdigit() for c in word):
        classes.append("digits")
    if "'" in word:
        classes.append("apostrophe")
    return tuple(classes)


def face_family(font: str) -> str:
    """The family of a sample's recorded face (``FontFace.name`` is "family/file[@axes]"); a name
    without a slash is taken whole."""
    return font.partition("/")[0] or "unknown"


def breakdowns(preds: list[str], truths: list[str], fonts: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Count, word accuracy and CER per word length, face, family, style of face ("condensed",
    "monospaced", "regular"), word class (``word_classes``; a word may be in two) and how the word
    is written (``text_classes``: its case, digits, apostrophe)."""
    groups: dict[str, dict[Any, tuple[list[str], list[str]]]] = {
        name: defaultdict(lambda: ([], [])) for name in ("per_length", "per_font", "per_family", "per_style",
                                                         "per_word_class", "per_text")
    }  # fmt: skip
    for pred, truth, font in zip(preds, truths, fonts, strict=True):
        family = face_family(font or "unknown")
        keys = [("per_length", len(truth)), ("per_font", font or "unknown"), ("per_family", family),
                ("per_style", family_style(family))]  # fmt: skip
        keys += [("per_word_class", name) for name in word_classes(truth)]
        keys += [("per_text", name) for name in text_classes(truth)]
        for breakdown, key in keys:
            groups[breakdown][key][0].append(pred)
            groups[breakdown][key][1].append(truth)
    return {name: _breakdown(grouped) for name, grouped in groups.items()}


def evaluate(artifact_uri: str, dataset_uri: str, batch_size: int = 256,
             recognizer: Recognizer | None = None) -> dict[str, Any]:
    """Read every sample of ``dataset_uri`` as the predictor does (beam search, reranked by the
    artifact's spelling model if it has one) and report overall metrics and ``breakdowns``."""
    recognizer = recognizer or Recognizer.load(artifact_uri)
    metrics = {
        "artifact_uri": artifact_uri,
        "dataset_uri": dataset_uri,
        **score_samples(recognizer, shards.iter_samples(dataset_uri), batch_size),
    }
    log.info("%s on %s: word accuracy %.4f, CER %.4f over %d images",
             artifact_uri, dataset_uri, metrics["word_accuracy"], metrics["cer"], metrics["count"])
    return metrics


def score_samples(recognizer: Recognizer, samples: Iterable[shards.Sample], batch_size: int = 256,
                  max_example_errors: int | None = MAX_EXAMPLE_ERRORS) -> dict[str, Any]:  # fmt: skip
    """``evaluate``'s metrics of ``samples`` (model inputs with their words and faces), without
    the URIs; ``max_example_errors=None`` lists every misread sample, in order."""
    preds: list[str] = []
    truths: list[str] = []
    fonts: list[str] = []
    confidences: list[float] = []
    for batch in _batches(iter(samples), batch_size):
        images = np.stack([s.image for s in batch])
        for sample, result in zip(batch, recognizer.recognize(images, top_k=1), strict=True):
            preds.append(result.text)
            confidences.append(result.confidence)
            truths.append(sample.text)
            fonts.append(sample.font)

    scored = list(zip(preds, truths, confidences, strict=True))
    errors = [
        {"truth": t, "predicted": p, "font": f, "confidence": round(c, 4)}
        for p, t, f, c in zip(preds, truths, fonts, confidences, strict=True)
        if p != t
    ]
    return {
        "count": len(truths),
        "word_accuracy": word_accuracy(preds, truths),
        "cer": character_error_rate(preds, truths),
        # Right but for case ("game" for "Game"): what a reader that ignores case gets.
        "word_accuracy_ignoring_case": word_accuracy([p.lower() for p in preds], [t.lower() for t in truths]),
        "mean_confidence_correct": _mean([c for p, t, c in scored if p == t]),
        "mean_confidence_wrong": _mean([c for p, t, c in scored if p != t]),
        # Of readings with confidence about p, how many are right (wordocr.calibration).
        "reliability": reliability(confidences, [p == t for p, t in zip(preds, truths, strict=True)]),
        **breakdowns(preds, truths, fonts),
        "error_count": len(errors),
        "example_errors": errors[:max_example_errors],
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(
        prog="python -m wordocr.evaluate",
        description="Evaluate a model artifact on a shard dataset and write the metrics as JSON.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model artifact folder or gs:// prefix (with spec.json)")
    parser.add_argument("--data", required=True, help="dataset folder or gs:// prefix (with manifest.json)")
    parser.add_argument("--out", help="write the metrics JSON here (local path or gs://); default: stdout")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    metrics = json.dumps(evaluate(args.model, args.data, args.batch_size), indent=2)
    if args.out:
        storage.write_bytes(args.out, metrics.encode())
    else:
        print(metrics)


if __name__ == "__main__":
    main()
