"""What a network shape costs: training speed, parameters and ONNX Runtime latency, network by network.

    python -m tools.network_cost [--network NAME:FILTERS:LSTM:DOWNSAMPLE[:separable] ...] [--json costs.json]

e.g. ``--network default:32,64,128,128,256:128:4 --network small96:32,64,96,96,160:96:2``; a fifth
field ``separable`` gives the network depthwise-separable convolutions (``ModelSize.separable_convs``).
Without ``--network`` it measures the four networks of docs/experiments.md's "96 time steps in a
smaller network" (2026-12-06): the default at 48 and at 96 time steps, the smaller one at 96 and 48.

For each network, one after another on the same cores:

  training   ``wordocr.model.build_model`` compiled as ``wordocr.train`` compiles it (Adam with the
             local recipe's clipnorm, the CTC loss), ``train_on_batch`` on random pixels and random valid
             labels: --warmup steps, then --steps timed ones; images/s = batch x steps / seconds.
             The ratio is the first network's images/s over this one's: its training time
             relative to the first network's.
  parameters ``model.count_params()``.
  ORT        the model alone as an artifact's ``model.onnx`` (``wordocr.onnx_export.keras_to_onnx``
             of the inference copy), read as the predictor reads it (its ONNX Runtime session
             options) with --threads intra-op threads: one image,
             p50 of --runs runs; batches of 64, images/s from the median batch.

Weights are untrained (they do not change the time). The timings are for comparing networks
measured in the same run: on shared cores they move up to 2x from one day to the next, so read
the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from wordocr import storage
from wordocr.alphabet import DEFAULT_ALPHABET, Alphabet
from wordocr.config import DEFAULT_INPUT_SPEC, InputSpec, ModelSize

if TYPE_CHECKING:
    import keras

log = logging.getLogger("network_cost")

# The recipe whose optimizer the training steps use: the one the experiments' trials train.
TRAINING_RECIPE = "local"

ORT_BATCH = 64
# Batch runs per one-image run: 400 one-image runs give 20 batches of 64, a few seconds a network.
ORT_BATCH_RUN_SHARE = 20

_DEFAULT_FILTERS = ModelSize().filters_text
_SMALL = "32,64,96,96,160:96"
DEFAULT_NETWORKS = (
    f"default:{_DEFAULT_FILTERS}:128:4",
    f"default-d2:{_DEFAULT_FILTERS}:128:2",
    f"small-d2:{_SMALL}:2",
    f"small:{_SMALL}:4",
)


@dataclass(frozen=True)
class Network:
    """A network shape to measure: its conv filters and LSTM units, and the input's width downsampling."""

    name: str
    size: ModelSize
    spec: InputSpec

    def describe(self) -> str:
        return (f"{self.name}: filters {self.size.filters_text}"
                f"{' (separable)' if self.size.separable_convs else ''}, LSTM {self.size.lstm_units}, "
                f"downsample {self.spec.width_downsample}")


def parse_network(text: str) -> Network:
    """``NAME:FILTERS:LSTM:DOWNSAMPLE[:separable]`` -> Network; ``argparse.ArgumentTypeError`` saying
    what is wrong."""
    from wordocr.model import pool_sizes

    parts = text.split(":")
    if len(parts) not in (4, 5) or not parts[0] or parts[4:] not in ([], ["separable"]):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME:FILTERS:LSTM:DOWNSAMPLE[:separable], "
                                         "e.g. small96:32,64,96,96,160:96:2")
    name, filters, lstm, downsample = parts[:4]
    try:
        conv_filters = ModelSize.parse_filters(filters)
        lstm_units, width_downsample = int(lstm), int(downsample)
        if lstm_units < 1:
            raise ValueError(f"LSTM units must be positive, got {lstm_units}")
        spec = dataclasses.replace(DEFAULT_INPUT_SPEC, width_downsample=width_downsample)
        spec.check_time_steps()  # what a run's width_downsample setting must leave
        pool_sizes(spec, len(conv_filters))  # the model's own check of the downsampling
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc
    size = ModelSize(conv_filters=conv_filters, lstm_units=lstm_units, separable_convs=len(parts) == 5)
    return Network(name, size, spec)


# ---------------------------------------------------------------------------------------------
# Training steps


def random_batch(spec: InputSpec, alphabet: Alphabet, batch: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``float32 [B, H, W]`` uint8-valued pixels and int32 ``[B, max_word_length]`` labels of 1 to
    max_word_length class ids, padded as ``wordocr.train.encode_text`` pads them."""
    from wordocr.train import LABEL_PAD

    images = rng.integers(0, 256, size=(batch, spec.height, spec.width)).astype(np.float32)
    labels = np.full((batch, spec.max_word_length), LABEL_PAD, dtype=np.int32)
    lengths = rng.integers(1, spec.max_word_length + 1, size=batch)
    for row, length in enumerate(lengths):
        labels[row, :length] = rng.integers(0, len(alphabet.chars), size=length)
    return images, labels


def compiled_model(spec: InputSpec, alphabet: Alphabet, size: ModelSize) -> keras.Model:
    """``build_model`` compiled as ``wordocr.train.train`` compiles it with the local recipe's optimizer
    settings (float32, as on a CPU; the learning-rate schedule does not change a step's time)."""
    import keras

    from wordocr.model import build_model, ctc_loss_fn
    from wordocr.recipes import recipe_named

    model = build_model(spec, alphabet, size)
    config = recipe_named(TRAINING_RECIPE).training
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
                  loss=ctc_loss_fn(alphabet))
    return model


def training_rate(model: keras.Model, spec: InputSpec, alphabet: Alphabet, batch: int, steps: int,
                  warmup: int, seed: int = 0) -> float:
    """Training images/s of ``model`` (compiled) over ``steps`` timed ``train_on_batch`` calls, after
    ``warmup`` untimed ones (the first builds the graph)."""
    images, labels = random_batch(spec, alphabet, batch, np.random.default_rng(seed))
    for _ in range(warmup):
        model.train_on_batch(images, labels)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return batch * steps / (time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# ONNX Runtime, the model alone


@dataclass(frozen=True)
class OnnxLatency:
    one_image_ms: float  # p50
    batch_images_per_second: float  # from the median batch
    batch: int
    output_shape: tuple[int, ...]  # of a batch: [batch, time steps, classes]


def onnx_reader(model: keras.Model, spec: InputSpec, alphabet: Alphabet, threads: int):
    """The predictor's ONNX Runtime reader (``wordocr.onnx_recognizer.OnnxRecognizer``: its session
    options, its input checks) on ``model`` exported as an artifact's ``model.onnx`` is."""
    from wordocr.artifact import inference_copy
    from wordocr.onnx_export import keras_to_onnx
    from wordocr.onnx_recognizer import OnnxRecognizer

    return OnnxRecognizer(keras_to_onnx(inference_copy(model), spec), spec, alphabet, threads=threads)


def onnx_latency(model: keras.Model, spec: InputSpec, alphabet: Alphabet, runs: int, threads: int,
                 batch: int = ORT_BATCH, seed: int = 0) -> OnnxLatency:
    """One-image p50 over ``runs`` runs and batch images/s over ``runs // 20`` (at least 2) batches."""
    reader = onnx_reader(model, spec, alphabet, threads)
    images = np.random.default_rng(seed).integers(0, 256, size=(batch, spec.height, spec.width), dtype=np.uint8)

    def seconds(inputs: np.ndarray, count: int) -> list[float]:
        reader.logits(inputs)  # warm-up: the first run allocates
        times = []
        for _ in range(count):
            started = time.perf_counter()
            reader.logits(inputs)
            times.append(time.perf_counter() - started)
        return times

    one = seconds(images[:1], runs)
    batched = seconds(images, max(2, runs // ORT_BATCH_RUN_SHARE))
    output_shape = tuple(reader.logits(images).shape)
    return OnnxLatency(one_image_ms=1000 * statistics.median(one),
                       batch_images_per_second=batch / statistics.median(batched),
                       batch=batch, output_shape=output_shape)


# ---------------------------------------------------------------------------------------------


def measure(network: Network, alphabet: Alphabet, batch: int, steps: int, warmup: int, runs: int,
            threads: int, onnx: bool = True) -> dict[str, Any]:
    """One network's record: its shape, parameters, training images/s and (with ``onnx``) ORT latency."""
    import keras

    # The previous network's graphs and variables go. A network of other time steps after the
    # first makes Grappler log "'tfg.While' op ... not compatible" for the CTC loop and skip one
    # pass; its rate matches that of the same network measured first in a process of its own.
    keras.backend.clear_session()
    model = compiled_model(network.spec, alphabet, network.size)
    record: dict[str, Any] = {
        "name": network.name,
        "conv_filters": list(network.size.conv_filters),
        "lstm_units": network.size.lstm_units,
        "separable_convs": network.size.separable_convs,
        "width_downsample": network.spec.width_downsample,
        "time_steps": network.spec.time_steps,
        "parameters": int(model.count_params()),
    }
    log.info("%s: %d time steps, %d parameters; training %d+%d steps of %d", network.describe(),
             record["time_steps"], record["parameters"], warmup, steps, batch)
    record["train_images_per_second"] = training_rate(model, network.spec, alphabet, batch, steps, warmup)
    log.info("%s: %.1f training images/s", network.name, record["train_images_per_second"])
    if onnx:
        latency = onnx_latency(model, network.spec, alphabet, runs, threads)
        record.update(ort_one_image_ms=latency.one_image_ms,
                      ort_batch_images_per_second=latency.batch_images_per_second, ort_batch=latency.batch)
        log.info("%s: ORT one image %.2f ms, batch %d %.0f images/s", network.name, latency.one_image_ms,
                 latency.batch, latency.batch_images_per_second)
    return record


def with_ratios(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record with ``training_time_ratio``: the first network's images/s over its own."""
    first = records[0]["train_images_per_second"]
    return [{**r, "training_time_ratio": first / r["train_images_per_second"]} for r in records]


def markdown_table(records: list[dict[str, Any]], networks: list[Network]) -> str:
    rows = ["| network | time steps | parameters | training images/s | training time ratio | "
            f"ORT one image | ORT batch {ORT_BATCH} |",
            "|---|---|---|---|---|---|---|"]
    for record, network in zip(records, networks, strict=True):
        one = f"{record['ort_one_image_ms']:.2f} ms" if "ort_one_image_ms" in record else "-"
        batched = f"{record['ort_batch_images_per_second']:,.0f} images/s" if "ort_one_image_ms" in record else "-"
        rows.append(f"| {network.describe()} | {record['time_steps']} | {record['parameters']:,} | "
                    f"{record['train_images_per_second']:,.0f} | {record['training_time_ratio']:.2f} | "
                    f"{one} | {batched} |")
    return "\n".join(rows)


def _count(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {minimum}, got {text}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.network_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", type=parse_network, action="append", metavar="NAME:FILTERS:LSTM:DOWNSAMPLE",
                   help="a network to measure, repeatable; the first is the ratios' reference "
                        f"(default: {' '.join(DEFAULT_NETWORKS)})")
    p.add_argument("--batch", type=_count(1), default=128, help="training batch size (default: %(default)s)")
    p.add_argument("--steps", type=_count(1), default=6, help="timed training steps (default: %(default)s)")
    p.add_argument("--warmup", type=_count(0), default=2, help="untimed training steps first (default: %(default)s)")
    p.add_argument("--runs", type=_count(1), default=400,
                   help=f"ORT one-image runs; batches of {ORT_BATCH}: a {ORT_BATCH_RUN_SHARE}th of them "
                        "(default: %(default)s)")
    p.add_argument("--threads", type=_count(1), default=2, help="ORT intra-op threads (default: %(default)s)")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="measure training and parameters only")
    p.add_argument("--json", metavar="PATH", help="also write the settings and one record per network here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    networks = args.network or [parse_network(text) for text in DEFAULT_NETWORKS]
    alphabet = DEFAULT_ALPHABET
    records = with_ratios([
        measure(n, alphabet, args.batch, args.steps, args.warmup, args.runs, args.threads, args.onnx)
        for n in networks
    ])
    print(markdown_table(records, networks))
    if args.json:
        settings = {"batch": args.batch, "steps": args.steps, "warmup": args.warmup, "runs": args.runs,
                    "threads": args.threads, "onnx": args.onnx, "alphabet": alphabet.chars}
        doc = {"settings": settings, "networks": records}
        storage.write_bytes(args.json, json.dumps(doc, indent=2, allow_nan=False).encode())
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
