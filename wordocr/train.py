"""Train the CRNN-CTC model on shard datasets and write a model artifact.

What matters is the validation WORD accuracy, not the loss: every epoch a callback greedy-decodes
the validation set, the best epoch's weights are kept (CTC training can collapse for an epoch or
two and recover), early stopping watches the same number, and the best weights are what gets
saved. With a ``checkpoint_dir`` each epoch's weights, optimizer state and history are saved, so a
killed run started again with the same arguments resumes after its last finished epoch.

How it trains (epochs, batch size, schedule, model size, ...) is a ``TrainConfig``; the named
recipes (wordocr.recipes) hold one each, and the CLI starts from ``--recipe``'s and changes what
its flags name:

    python -m wordocr.train --train data/train --val data/val --out models/run1 --recipe local --epochs 10
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from wordocr import char_lm, shards, storage
from wordocr.alphabet import Alphabet
from wordocr.artifact import save_artifact
from wordocr.config import InputSpec, ModelSize
from wordocr.decode import greedy_decode
from wordocr.metrics import character_error_rate, word_accuracy
from wordocr.model import build_model, ctc_loss_fn
from wordocr.recipes import RECIPES, TrainConfig, recipe_named

log = logging.getLogger(__name__)

MONITOR = "val_word_accuracy"
LABEL_PAD = -1


@dataclass
class TrainResult:
    artifact_uri: str
    best_epoch: int  # 1-based
    best_val_word_accuracy: float
    epochs_run: int
    history: dict[str, list[float]]
    train_images_per_second: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Data: (uint8 image, text) records -> (float32 image, padded label ids)


def label_lookup(alphabet: Alphabet):
    """A table from single characters to class ids; anything else maps to ``LABEL_PAD``."""
    import tensorflow as tf

    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(alphabet.chars)), tf.range(len(alphabet.chars), dtype=tf.int32)
        ),
        default_value=LABEL_PAD,
    )


def encode_text(text, table, max_length: int):
    """``tf.string`` word -> int32 ``[max_length]`` class ids padded with ``LABEL_PAD``, and a validity flag."""
    import tensorflow as tf

    ids = table.lookup(tf.strings.unicode_split(text, "UTF-8"))
    length = tf.shape(ids)[0]
    valid = (length > 0) & (length <= max_length) & tf.reduce_all(ids >= 0)
    ids = ids[:max_length]
    ids = tf.pad(ids, [[0, max_length - tf.shape(ids)[0]]], constant_values=LABEL_PAD)
    return tf.ensure_shape(ids, [max_length]), valid


def make_dataset(uri: str, alphabet: Alphabet, spec: InputSpec, batch_size: int, *, training: bool,
                 config: TrainConfig, limit: int | None = None):
    """Batches of ``(float32 [B, H, W] pixels, int32 [B, max_len] labels, text)`` and the sample count.

    Words the model cannot spell (empty, too long, foreign characters) are skipped.
    """
    import tensorflow as tf

    records, manifest = shards.load_tf_dataset(uri)
    data_spec = InputSpec.from_dict(manifest.input_spec)
    if not data_spec.same_images(spec):
        raise ValueError(f"{uri} holds {data_spec} images; the model is built for {spec}")
    table = label_lookup(alphabet)

    def with_labels(image, text):
        ids, valid = encode_text(text, table, spec.max_word_length)
        return image, ids, text, valid

    data = records.map(with_labels, num_parallel_calls=tf.data.AUTOTUNE)
    data = data.filter(lambda image, ids, text, valid: valid)
    data = data.map(lambda image, ids, text, valid: (image, ids, text))
    count = manifest.count
    if limit is not None:
        data = data.take(limit)
        count = min(count, limit)
    if count <= config.cache_max_samples:
        data = data.cache()  # uint8 images: 6 KB each at 32 x 192
    if training:
        data = data.shuffle(min(count, config.shuffle_buffer), seed=config.seed, reshuffle_each_iteration=True)
        data = data.repeat().map(lambda image, ids, text: (image, ids))
    # The model takes float32 pixels; cast whole batches, after the cache, to keep it small.
    data = data.batch(batch_size).map(lambda image, *rest: (tf.cast(image, tf.float32), *rest))
    return data.prefetch(tf.data.AUTOTUNE), count


# ---------------------------------------------------------------------------------------------
# Checkpoints: last epoch (weights + optimizer), best epoch, and the history, local or gs://


class Checkpoints:
    """Weights are saved under names that carry their epoch; ``state.json``, written last, says
    which epoch is the last and which the best, so a run killed at any moment resumes from a
    consistent pair. Files no state names any more are deleted after the state moves on."""

    STATE = "state.json"

    def __init__(self, uri: str):
        self.uri = uri

    @staticmethod
    def _last_name(epoch: int) -> str:
        return f"last-{epoch:04d}.weights.h5"

    @staticmethod
    def _best_name(epoch: int) -> str:
        return f"best-{epoch:04d}.weights.h5"

    def _save_weights(self, model: keras.Model, name: str) -> None:
        with tempfile.TemporaryDirectory(prefix="word-ocr-ckpt-") as tmp:
            local = Path(tmp, name)
            model.save_weights(local)
            storage.upload_file(local, storage.join(self.uri, name))

    def _load_weights(self, model: keras.Model, name: str) -> None:
        with tempfile.TemporaryDirectory(prefix="word-ocr-ckpt-") as tmp:
            local = Path(tmp, name)
            storage.download_file(storage.join(self.uri, name), local)
            model.load_weights(local)

    def save(self, model: keras.Model, state: dict[str, Any], improved: bool) -> None:
        self._save_weights(model, self._last_name(state["epoch"]))
        if improved:
            self._save_weights(model, self._best_name(state["epoch"]))
        storage.write_bytes(storage.join(self.uri, self.STATE), json.dumps(state).encode())
        keep = {self.STATE, self._last_name(state["epoch"]), self._best_name(state.get("best_epoch", 0))}
        for name in storage.list_names(self.uri):
            if name.endswith(".weights.h5") and name not in keep:
                storage.delete(storage.join(self.uri, name))

    def restore(self, model: keras.Model) -> tuple[dict[str, Any], list[np.ndarray] | None] | None:
        """Load the last epoch into ``model``; return the saved state and the best weights, or None."""
        state_uri = storage.join(self.uri, self.STATE)
        if not storage.exists(state_uri):
            return None
        state = json.loads(storage.read_bytes(state_uri).decode())
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        best = None
        if state.get("best_epoch"):
            self._load_weights(model, self._best_name(state["best_epoch"]))
            best = model.get_weights()
        self._load_weights(model, self._last_name(state["epoch"]))
        return state, best


# ---------------------------------------------------------------------------------------------
# The callback that decides which epoch wins


class WordAccuracyCallback(keras.callbacks.Callback):
    """Each epoch: greedy-decode the validation set, add val_loss / val_word_accuracy / val_cer to the
    logs, remember the best weights, checkpoint, and log one line."""

    def __init__(self, val_data, alphabet: Alphabet, steps_per_epoch: int, batch_size: int,
                 checkpoints: Checkpoints | None, state: dict[str, Any] | None = None,
                 best_weights: list[np.ndarray] | None = None):
        super().__init__()
        self.val_data = val_data
        self.alphabet = alphabet
        self.images_per_epoch = steps_per_epoch * batch_size
        self.checkpoints = checkpoints
        state = state or {}
        self.history: dict[str, list[float]] = state.get("history", {})
        self.best_value: float = state.get("best_value", -1.0)
        self.best_epoch: int = state.get("best_epoch", 0)
        self.train_seconds: float = state.get("train_seconds", 0.0)
        self.best_weights = best_weights
        self._loss_fn = ctc_loss_fn(alphabet)
        self._predict = None

    def _evaluate(self) -> dict[str, float]:
        import tensorflow as tf

        if self._predict is None:
            model, loss_fn = self.model, self._loss_fn

            @tf.function
            def predict(images, labels):
                logits = model(images, training=False)
                return logits, loss_fn(labels, logits)

            self._predict = predict
        preds, truths, losses = [], [], []
        for images, labels, texts in self.val_data:
            logits, loss = self._predict(images, labels)
            preds.extend(greedy_decode(logits.numpy(), self.alphabet))
            truths.extend(t.decode() for t in texts.numpy())
            losses.append(loss.numpy())
        return {
            "val_loss": float(np.concatenate(losses).mean()) if losses else float("nan"),
            MONITOR: word_accuracy(preds, truths),
            "val_cer": character_error_rate(preds, truths),
        }

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        train_seconds = time.perf_counter() - self._started
        self.train_seconds += train_seconds
        logs = logs if logs is not None else {}
        logs.update(self._evaluate())
        logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["images_per_second"] = self.images_per_epoch / train_seconds
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

        improved = logs[MONITOR] > self.best_value
        if improved:
            self.best_value, self.best_epoch = logs[MONITOR], epoch + 1
            self.best_weights = self.model.get_weights()
        log.info(
            "epoch %d/%d: loss %.3f  val_loss %.3f  val word acc %.4f  val cer %.4f  lr %.2e  "
            "%.0f img/s%s",
            epoch + 1, self.params.get("epochs", 0), logs.get("loss", float("nan")), logs["val_loss"],
            logs[MONITOR], logs["val_cer"], logs["lr"], logs["images_per_second"],
            "  (best)" if improved else "",
        )
        if self.checkpoints is not None:
            self.checkpoints.save(self.model, self.state(epoch + 1), improved)

    def state(self, epochs_done: int) -> dict[str, Any]:
        return {
            "epoch": epochs_done,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "history": self.history,
            "train_seconds": self.train_seconds,
        }


# ---------------------------------------------------------------------------------------------
# Reports written beside the artifact


def plot_curves(history: dict[str, list[float]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history.get("loss", [])) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history.get("loss", []), label="train")
    ax_loss.plot(epochs, history.get("val_loss", []), label="validation")
    ax_loss.set(title="CTC loss", xlabel="epoch", yscale="log")
    ax_loss.legend()
    ax_acc.plot(epochs, history.get(MONITOR, []), marker="o")
    ax_acc.set(title="validation word accuracy", xlabel="epoch", ylim=(0, 1))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    if config.schedule == "constant":
        return config.learning_rate
    if config.schedule != "cosine":
        raise ValueError(f"unknown schedule {config.schedule!r}; use 'cosine' or 'constant'")
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, int(config.warmup_epochs * steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.1 if warmup else config.learning_rate,
        decay_steps=total - warmup,
        alpha=config.final_lr_fraction,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def _distribution(config: TrainConfig):
    """(strategy, mixed precision?) for the devices TensorFlow sees: GPUs get both, a CPU neither."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    return strategy, bool(gpus) and config.mixed_precision


def train(
    train_uri: str,
    val_uri: str,
    out_dir: str,
    config: TrainConfig,
    checkpoint_dir: str | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainResult:
    """Train on ``train_uri``, keep the epoch with the best validation word accuracy, save it to ``out_dir``.

    ``out_dir`` receives the model artifact (``model.keras``, ``spec.json``) plus ``history.json``
    and ``training_curves.png``. ``callbacks`` are extra Keras callbacks (run after ours).
    """
    keras.utils.set_random_seed(config.seed)
    manifest = shards.read_manifest(train_uri)
    # The images are the data's; how finely the network reads them along the word is the run's.
    spec = replace(InputSpec.from_dict(manifest.input_spec), width_downsample=config.width_downsample)
    spec.check_time_steps()  # TrainConfig checked the default geometry; this is the data's
    alphabet = Alphabet(manifest.alphabet)

    train_data, train_count = make_dataset(train_uri, alphabet, spec, config.batch_size, training=True,
                                           config=config)
    val_data, val_count = make_dataset(val_uri, alphabet, spec, max(config.batch_size, 256), training=False,
                                       config=config, limit=config.val_samples)
    steps_per_epoch = config.steps_per_epoch or max(1, math.ceil(train_count / config.batch_size))
    log.info("training on %d images (%d steps/epoch), validating on %d; input %s, %d classes",
             train_count, steps_per_epoch, val_count, spec, alphabet.num_classes)

    strategy, mixed = _distribution(config)
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with strategy.scope():
            model = build_model(spec, alphabet, config.model_size)
            optimizer = keras.optimizers.Adam(_learning_rate(config, steps_per_epoch), clipnorm=config.clipnorm)
            model.compile(optimizer=optimizer, loss=ctc_loss_fn(alphabet))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    log.info("model %s: %d parameters%s", model.name, model.count_params(), " (mixed precision)" if mixed else "")

    checkpoints = Checkpoints(checkpoint_dir) if checkpoint_dir else None
    restored = checkpoints.restore(model) if checkpoints else None
    state, best_weights = restored if restored else ({}, None)
    initial_epoch = state.get("epoch", 0)
    if restored:
        log.info("resuming from %s after epoch %d", checkpoint_dir, initial_epoch)

    tracker = WordAccuracyCallback(val_data, alphabet, steps_per_epoch, config.batch_size, checkpoints,
                                   state, best_weights)
    fit_callbacks: list[keras.callbacks.Callback] = [tracker]
    if config.patience > 0:
        fit_callbacks.append(
            keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=config.patience, verbose=1)
        )
    fit_callbacks.extend(callbacks or [])
    if initial_epoch < config.epochs:
        model.fit(train_data, epochs=config.epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps_per_epoch, callbacks=fit_callbacks, shuffle=False, verbose=0)

    if tracker.best_weights is None:
        raise RuntimeError("training ran no epoch: nothing to save")
    model.set_weights(tracker.best_weights)
    history = tracker.history
    epochs_run = len(history.get("loss", []))
    images_per_second = epochs_run * steps_per_epoch * config.batch_size / max(tracker.train_seconds, 1e-9)
    log.info("best epoch %d: val word accuracy %.4f; %.0f training images/s",
             tracker.best_epoch, tracker.best_value, images_per_second)

    summary = {
        "train_uri": train_uri,
        "val_uri": val_uri,
        "train_count": train_count,
        "val_count": val_count,
        "config": config.to_dict(),
        "best_epoch": tracker.best_epoch,
        "best_val_word_accuracy": tracker.best_value,
        "best_val_cer": history["val_cer"][tracker.best_epoch - 1],
        "epochs_run": epochs_run,
        "train_images_per_second": images_per_second,
        "device": "gpu" if mixed or strategy.num_replicas_in_sync > 1 else "default",
        "train_params": manifest.params,
    }
    # Reports first, spec.json (inside save_artifact) last: a folder with spec.json is complete.
    storage.write_bytes(storage.join(out_dir, "history.json"), json.dumps(history, indent=2).encode())
    storage.write_bytes(storage.join(out_dir, "training_curves.png"), plot_curves(history))
    save_trained_model(model, out_dir, spec, alphabet, summary, config.model_size, config.spelling_weight,
                       calibration_uri=val_uri)  # fmt: skip
    return TrainResult(out_dir, tracker.best_epoch, tracker.best_value, epochs_run, history, images_per_second)


def save_trained_model(model: keras.Model, out_dir: str, spec: InputSpec, alphabet: Alphabet,
                       summary: dict[str, Any], model_size: ModelSize, spelling_weight: float,
                       calibration_uri: str | None = None) -> None:  # fmt: skip
    """Write the artifact the predictor loads: the model, the spelling model of the training words
    (unless ``spelling_weight`` is 0) and spec.json with the training summary and, fitted on the
    dataset at ``calibration_uri`` (the validation images), the calibration of its confidences, last."""
    spelling = None
    if spelling_weight > 0:
        spelling = char_lm.training_words_model(spec.max_word_length, alphabet, spelling_weight)
    extra: dict[str, Any] = {"training": summary, "model_size": model_size.to_dict()}
    if calibration_uri:
        extra["calibration"] = fit_calibration(model, spec, alphabet, spelling, calibration_uri)
    save_artifact(model, out_dir, spec, alphabet, extra, language_model=spelling)


def fit_calibration(model: keras.Model, spec: InputSpec, alphabet: Alphabet,
                    spelling: char_lm.CharLanguageModel | None, data_uri: str) -> dict[str, Any]:  # fmt: skip
    """Read the dataset at ``data_uri`` as the predictor would (beam, spelling, second look) and fit
    ``wordocr.calibration`` to its raw confidences; the fit's parameters with the expected
    calibration error before and after."""
    from wordocr.artifact import inference_copy
    from wordocr.calibration import fit, reliability
    from wordocr.recognizer import Recognizer

    reader = Recognizer(inference_copy(model), spec, alphabet, language_model=spelling, xla_batch_buckets=())
    confidences, correct = [], []
    samples = list(shards.iter_samples(data_uri))
    for start in range(0, len(samples), 256):
        batch = samples[start : start + 256]
        for sample, reading in zip(batch, reader.recognize(np.stack([s.image for s in batch]), top_k=1), strict=True):
            confidences.append(reading.confidence)
            correct.append(reading.text == sample.text)
    calibration = fit(confidences, correct)
    before = reliability(confidences, correct)["ece"]
    after = reliability(calibration.apply(confidences), correct)["ece"]
    log.info("calibration on %d validation images: slope %.3f, offset %.3f; ECE %.4f -> %.4f",
             len(correct), calibration.slope, calibration.offset, before, after)
    return {**calibration.to_dict(), "ece_raw": before, "ece_calibrated": after}


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wordocr.train",
        description="Train the CRNN-CTC word reader on shard datasets (local folders or gs://) and write "
        "a model artifact (model.keras + spec.json), history.json and training_curves.png to --out. "
        "The options start from --recipe's (wordocr/recipes.py); each flag given changes one.",
    )
    parser.add_argument("--train", required=True, help="training dataset (folder or gs:// with manifest.json)")
    parser.add_argument("--val", required=True, help="validation dataset; its word accuracy picks the best epoch")
    parser.add_argument("--out", required=True, help="where to write the model artifact")
    parser.add_argument("--checkpoint-dir", help="save every epoch here and resume from it if a run restarts")
    parser.add_argument("--recipe", choices=list(RECIPES), default="cluster",
                        help="the training options to start from (default: %(default)s)")
    options = parser.add_argument_group("training options (default: the recipe's)")
    options.add_argument("--epochs", type=int, help="maximum epochs")
    options.add_argument("--batch-size", type=int, help="images per step")
    options.add_argument("--learning-rate", type=float, help="peak Adam learning rate")
    options.add_argument("--schedule", choices=["cosine", "constant"],
                         help="cosine: linear warm-up for --warmup-epochs, then cosine decay")
    options.add_argument("--warmup-epochs", type=float, help="warm-up length")
    options.add_argument("--final-lr-fraction", type=float, help="cosine decays to this fraction of the peak")
    options.add_argument("--clipnorm", type=float, help="gradient clipping norm; 0 disables clipping")
    options.add_argument("--patience", type=int,
                         help="stop after this many epochs without a better val word accuracy (0: never)")
    options.add_argument("--steps-per-epoch", type=int, help="0: one pass over --train")
    options.add_argument("--val-samples", type=int, help="decode at most this many val images per epoch")
    options.add_argument("--shuffle-buffer", type=int, help="images in the shuffle buffer")
    options.add_argument("--cache-max-samples", type=int, help="keep datasets up to this size decoded in memory")
    options.add_argument("--seed", type=int, help="weights and shuffling seed")
    options.add_argument("--conv-filters", help="filters of each conv block, comma separated")
    options.add_argument("--lstm-units", type=int, help="per direction")
    options.add_argument("--dropout", type=float, help="before the LSTMs")
    options.add_argument("--separable-convs", action=argparse.BooleanOptionalAction,
                         help="depthwise-separable convolutions after the first block (faster to read)")
    options.add_argument("--width-downsample", type=int,
                         help="input columns per CTC time step (4: 48 steps on a 192-pixel input, 2: 96)")
    options.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction,
                         help="mixed_float16 on a GPU (no effect on a CPU)")
    options.add_argument("--spelling-weight", type=float,
                         help="weight of the English spelling model that reranks the beam's words; 0: none")
    parser.add_argument("--result-json", help="also write the TrainResult here as JSON (local or gs://)")
    return parser.parse_args(argv)


# The flags that are TrainConfig options (the others say what to train on and where to write).
_OPTION_FLAGS = (
    "epochs", "batch_size", "learning_rate", "schedule", "warmup_epochs", "final_lr_fraction", "clipnorm",
    "patience", "steps_per_epoch", "val_samples", "shuffle_buffer", "cache_max_samples", "seed", "conv_filters",
    "lstm_units", "dropout", "separable_convs", "width_downsample", "mixed_precision", "spelling_weight",
)  # fmt: skip


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """``--recipe``'s TrainConfig with the options the flags give."""
    given = {name: getattr(args, name) for name in _OPTION_FLAGS if getattr(args, name) is not None}
    return recipe_named(args.recipe).training.with_settings(**given)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    result = train(args.train, args.val, args.out, config_from_args(args), checkpoint_dir=args.checkpoint_dir)
    if args.result_json:
        storage.write_bytes(args.result_json, json.dumps(result.to_dict(), indent=2).encode())


if __name__ == "__main__":
    main()
