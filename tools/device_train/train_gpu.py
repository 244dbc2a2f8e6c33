"""Train the CRNN with the cluster pipeline's default sizes on one GPU machine, without Kubeflow.

Why this exists: the cluster recipe's accuracy targets are for a model trained with its defaults
(200,000 images, 20 epochs, batch 128), 27 times the local run's budget. The GPU machine this
is written for has PyTorch but no TensorFlow, cannot install it and has no network, so
this runs Keras 3 on its torch backend (cuDNN LSTMs) with the project's own generator, model,
loss, learning-rate schedule and best-epoch rule (in float32 by default: see ``--precision``).
The data go from the generator to memory rather than through TFRecord shards. Out:
``best.weights.h5`` (wrap.py turns it into an artifact on the CPU machine), ``history.json``,
``meta.json``. Every phase is timed against ``--deadline`` so the weights come back even when
the full schedule does not fit.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

START = time.time()
SAVE_SECONDS = 25  # kept free at the end for saving the weights
PROBE_STEPS = 120


def log(message: str) -> None:
    print(f"[{time.time() - START:7.1f}s] {message}", flush=True)


def _shard(task: tuple) -> tuple[np.ndarray, list[str]]:
    split, index, num_shards, num_samples, seed, tier = task
    from wordocr import generate

    samples = list(generate.shard_samples(split, index, num_shards, num_samples, seed, "train", tier))
    return np.stack([s.image for s in samples]), [s.text for s in samples]


def generate_split(split: str, num_samples: int, seed: int, num_shards: int, procs: int,
                   deadline: float) -> tuple[np.ndarray, list[str]]:
    """``num_samples`` images of the training fonts and tier, in ``procs`` processes; fewer if the
    deadline comes first (the log says so)."""
    tasks = [(split, i, num_shards, num_samples, seed, "train") for i in range(num_shards)]
    images, texts = [], []
    started = time.time()
    with mp.get_context("spawn").Pool(procs) as pool:
        for done, (batch, words) in enumerate(pool.imap_unordered(_shard, tasks), 1):
            images.append(batch)
            texts.extend(words)
            if done % max(1, num_shards // 8) == 0 or done == num_shards:
                rate = len(texts) / (time.time() - started)
                log(f"  {split}: {done}/{num_shards} shards, {len(texts)} images, {rate:.0f} images/s")
            if time.time() > deadline and done < num_shards:
                log(f"  {split}: generation deadline reached after {done} of {num_shards} shards")
                pool.terminate()
                break
    return np.concatenate(images), texts


def compile_model(spec, alphabet, config, steps_per_epoch: int, precision: str, jit_compile="auto"):
    """The cluster's model, Adam with its clipping and warm-up + cosine schedule, and CTC loss,
    built under the Keras dtype policy ``precision`` (restored to float32 after)."""
    import keras

    from wordocr.model import build_model, ctc_loss_fn
    from wordocr.train import _learning_rate

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = build_model(spec, alphabet, config.model_size)
        optimizer = keras.optimizers.Adam(_learning_rate(config, steps_per_epoch), clipnorm=config.clipnorm)
        model.compile(optimizer=optimizer, loss=ctc_loss_fn(alphabet), jit_compile=jit_compile)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def _stub_numba_if_missing() -> None:
    """The spelling model (imported by wordocr.train, unused here) needs numba; stub it if absent."""
    try:
        import numba  # noqa: F401
    except Exception as exc:  # whatever breaks the import: training does not need it
        log(f"numba unavailable ({exc}); stubbing its njit")

        def njit(*args, **kwargs):
            return args[0] if args and callable(args[0]) else (lambda f: f)

        sys.modules["numba"] = types.SimpleNamespace(njit=njit, jit=njit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-samples", type=int, default=200_000)
    parser.add_argument("--val-samples", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=530.0, help="seconds from start by which all is saved")
    parser.add_argument("--gen-share", type=float, default=0.3, help="share of the deadline generation may take")
    # float32 by default: on an H200 (torch backend) a mixed_float16 step took 39.9 ms against
    # 31.2 (probe_step.py): the step is bound by Python dispatch, and autocasting adds ops.
    parser.add_argument("--precision", default="float32", help="e.g. mixed_float16 (the cluster's); "
                        "falls back to float32 if it fails")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    procs = os.cpu_count() or 2
    log(f"python {sys.version.split()[0]}, {procs} cpus, backend {os.environ.get('KERAS_BACKEND')}")

    # Data first, before any CUDA context exists in this process.
    gen_deadline = START + args.gen_share * args.deadline
    val_images, val_words = generate_split("val", args.val_samples, args.seed, 8, procs, gen_deadline + 60)
    train_images, train_words = generate_split("train", args.train_samples, args.seed, 8 * procs, procs,
                                               gen_deadline)
    gen_seconds = time.time() - START
    log(f"generated {len(train_words)} train + {len(val_words)} val images")

    _stub_numba_if_missing()
    import keras

    from wordocr.alphabet import Alphabet
    from wordocr.config import DEFAULT_INPUT_SPEC as spec
    from wordocr.decode import greedy_decode
    from wordocr.metrics import character_error_rate, word_accuracy
    from wordocr.model import build_model
    from wordocr.train import LABEL_PAD, TrainConfig

    alphabet = Alphabet()
    x = train_images.astype(np.float32)
    del train_images
    y = np.full((len(train_words), spec.max_word_length), LABEL_PAD, np.int32)
    for i, word in enumerate(train_words):
        y[i, : len(word)] = alphabet.encode(word)
    val_x = val_images.astype(np.float32)
    steps_per_epoch = math.ceil(len(x) / args.batch_size)

    def make_model(epochs: int, precision: str) -> tuple[keras.Model, TrainConfig]:
        config = TrainConfig(epochs=epochs, batch_size=args.batch_size, seed=args.seed)
        return compile_model(spec, alphabet, config, steps_per_epoch, precision), config

    # A throwaway model runs a few steps: does this precision work here, and how long is a step?
    for precision in (args.precision, "float32"):
        try:
            probe, _ = make_model(args.epochs, precision)
            warm = args.batch_size * 20
            probe.fit(x[:warm], y[:warm], batch_size=args.batch_size, epochs=1, verbose=0)
            timed = min(len(x), args.batch_size * PROBE_STEPS)
            t0 = time.time()
            loss = probe.fit(x[:timed], y[:timed], batch_size=args.batch_size, epochs=1, verbose=0).history["loss"][-1]
            step = (time.time() - t0) / math.ceil(timed / args.batch_size)
            if not np.isfinite(loss):
                raise FloatingPointError(f"loss {loss}")
            t0 = time.time()
            probe.predict(val_x, batch_size=1024, verbose=0)
            val_seconds = time.time() - t0
            break
        except Exception as exc:  # reported, then float32 is tried
            log(f"precision {precision} failed: {type(exc).__name__}: {exc}")
            if precision == "float32":
                raise
    del probe
    log(f"precision {precision}: {step * 1000:.2f} ms/step ({args.batch_size / step:.0f} images/s), "
        f"validation {val_seconds:.2f} s")

    train_deadline = START + args.deadline - SAVE_SECONDS
    epoch_seconds = steps_per_epoch * step * 1.08 + val_seconds + 1.0
    epochs = max(1, min(args.epochs, int((train_deadline - time.time()) / epoch_seconds)))
    log(f"{steps_per_epoch} steps/epoch, ~{epoch_seconds:.0f} s/epoch: the schedule runs {epochs} of "
        f"{args.epochs} epochs")
    model, config = make_model(epochs, precision)
    # The weights travel back without the optimizer's state: a compiled model's save_weights
    # holds Adam's moments too (27 MB, five times the weights), which nothing here needs.
    plain = build_model(spec, alphabet, config.model_size)
    history: dict[str, list[float]] = {}
    best: dict = {"accuracy": -1.0, "epoch": 0}
    started = time.time()

    def save(epochs_run: int) -> None:
        """Written after every epoch, so a run cut off before its deadline still leaves its best."""
        meta = {
            "train_images": len(x), "val_images": len(val_x), "requested_train_samples": args.train_samples,
            "epochs_requested": args.epochs, "epochs_scheduled": epochs, "epochs_run": epochs_run,
            "best_epoch": best["epoch"], "best_val_word_accuracy": best["accuracy"],
            "batch_size": args.batch_size, "precision": precision, "backend": keras.backend.backend(),
            "keras": keras.__version__, "probe_ms_per_step": step * 1000, "generation_seconds": gen_seconds,
            "train_seconds": time.time() - started, "total_seconds": time.time() - START, "cpus": procs,
            "seed": args.seed, **device_facts(),
        }
        (args.out / "history.json").write_text(json.dumps(history, indent=1))
        (args.out / "meta.json").write_text(json.dumps(meta, indent=1))

    class Track(keras.callbacks.Callback):
        """train.WordAccuracyCallback's rule: greedy val word accuracy picks the best epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.time() - self.started
            logits = keras.ops.convert_to_numpy(self.model.predict(val_x, batch_size=1024, verbose=0))
            preds = greedy_decode(logits, alphabet)
            row = {"loss": float((logs or {}).get("loss", float("nan"))),
                   "val_word_accuracy": word_accuracy(preds, val_words),
                   "val_cer": character_error_rate(preds, val_words),
                   "epoch_seconds": seconds, "images_per_second": steps_per_epoch * args.batch_size / seconds}
            for key, value in row.items():
                history.setdefault(key, []).append(value)
            improved = row["val_word_accuracy"] > best["accuracy"]
            if improved:
                best.update(accuracy=row["val_word_accuracy"], epoch=epoch + 1)
                plain.set_weights(self.model.get_weights())
                plain.save_weights(args.out / "best.weights.h5")
            save(epoch + 1)
            log(f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.3f}  val word acc {row['val_word_accuracy']:.4f}  "
                f"cer {row['val_cer']:.4f}  {seconds:.1f} s  {row['images_per_second']:.0f} images/s"
                f"{'  (best)' if improved else ''}")
            if epoch + 1 - best["epoch"] >= config.patience:
                log(f"early stop: no better validation accuracy in {config.patience} epochs")
                self.model.stop_training = True
            if time.time() + seconds + val_seconds + 2 > train_deadline:
                log("deadline: stopping before the next epoch")
                self.model.stop_training = True

    model.fit(x, y, batch_size=args.batch_size, epochs=epochs, shuffle=True, callbacks=[Track()], verbose=0)
    log(f"saved: best epoch {best['epoch']}, val word accuracy {best['accuracy']:.4f}; "
        f"{(args.out / 'meta.json').read_text()}")


def device_facts() -> dict:
    try:
        import torch
    except ImportError:
        return {}
    return {"torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


if __name__ == "__main__":
    main()
